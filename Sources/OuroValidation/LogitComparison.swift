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

    /// Adds one prompt's [T,V] logits.
    public mutating func add(model: [Float], reference: [Float], tokens: Int, vocab: Int) {
        precondition(model.count == tokens * vocab && reference.count == tokens * vocab, "LogitComparison: shape")
        maxAbsError = max(maxAbsError, ParityMetrics.maxAbsError(model, reference))
        for i in model.indices {
            let r = Double(reference[i])
            let d = Double(model[i]) - r
            squaredDifference += d * d
            squaredReference += r * r
        }
        positionKL += ParityMetrics.rowKL(reference: reference, model: model, rows: tokens, width: vocab)
        top1Matched += ParityMetrics.top1Matches(reference: reference, model: model, rows: tokens, width: vocab)
    }

    public var summary: LogitErrors {
        let rel: Double = squaredReference == 0 ? (squaredDifference == 0 ? 0 : .infinity)
            : (squaredDifference / squaredReference).squareRoot()
        let n = Double(max(positions, 1))
        return LogitErrors(
            maxAbsLogitError: maxAbsError,
            relativeRMSError: rel.isNaN ? .infinity : rel,
            kldMean: positionKL.reduce(0, +) / n,
            kldP99: ParityMetrics.percentile(positionKL, 0.99),
            kldMax: positionKL.max() ?? 0,
            top1Agreement: positions == 0 ? 1 : Double(top1Matched) / n,
            positions: positions)
    }
}
