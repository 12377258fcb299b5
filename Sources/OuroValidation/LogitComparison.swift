/// Accumulates the comparison of model logits against reference logits over several prompts,
/// so mean / p99 / max of the per-position KL are taken over all positions of all prompts.
public struct LogitComparison: Sendable {
    public private(set) var maxAbsError = 0.0
    private var squaredDifference = 0.0
    private var squaredReference = 0.0
    public private(set) var positionKL: [Double] = []
    public private(set) var top1Matched = 0
    public var positions: Int { positionKL.count }

    public init() {}

    /// Adds one prompt's [T,V] logits; returns that prompt's per-position KL.
    @discardableResult
    public mutating func add(model: [Float], reference: [Float], tokens: Int, vocab: Int) -> [Double] {
        precondition(model.count == tokens * vocab && reference.count == tokens * vocab, "LogitComparison: shape")
        maxAbsError = max(maxAbsError, ParityMetrics.maxAbsError(model, reference))
        for i in model.indices {
            let r = Double(reference[i])
            let d = Double(model[i]) - r
            squaredDifference += d * d
            squaredReference += r * r
        }
        let kl = ParityMetrics.rowKL(reference: reference, model: model, rows: tokens, width: vocab)
        positionKL += kl
        top1Matched += ParityMetrics.top1Matches(reference: reference, model: model, rows: tokens, width: vocab)
        return kl
    }

    public var summary: LogitErrors {
        let rel: Double = squaredReference == 0 ? (squaredDifference == 0 ? 0 : .infinity)
            : (squaredDifference / squaredReference).squareRoot()
        let n = Double(max(positions, 1))
        let sorted = positionKL.sorted()
        let mean = positionKL.reduce(0, +) / n
        let meanSquare = positionKL.reduce(0) { $0 + $1 * $1 } / n
        let top1 = positions == 0 ? 1 : Double(top1Matched) / n
        // Standard errors as llama-perplexity computes them (n - 1 in the denominator).
        let dof = Double(max(positions - 1, 1))
        return LogitErrors(
            maxAbsLogitError: maxAbsError,
            relativeRMSError: rel.isNaN ? .infinity : rel,
            kldMean: mean,
            kldP99: ParityMetrics.percentile(sorted: sorted, 0.99),
            kldMax: sorted.last ?? 0,
            top1Agreement: top1,
            positions: positions,
            kldMeanStderr: positions > 1 ? (max(meanSquare - mean * mean, 0) / dof).squareRoot() : 0,
            kldMedian: ParityMetrics.median(sorted: sorted),
            kldP90: ParityMetrics.percentile(sorted: sorted, 0.90),
            kldP95: ParityMetrics.percentile(sorted: sorted, 0.95),
            kldP999: ParityMetrics.percentile(sorted: sorted, 0.999),
            top1AgreementStderr: positions > 1 ? (top1 * (1 - top1) / dof).squareRoot() : 0)
    }
}
