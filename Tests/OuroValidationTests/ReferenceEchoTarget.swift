@testable import OuroValidation

/// A stand-in model that answers with the bundle's own reference values, optionally altered,
/// so the validator's bookkeeping (indexing, aggregation, verdict) is checked without the runtime.
final class ReferenceEchoTarget: ValidationTarget {
    let bundle: ReferenceBundle
    /// 0-based loop step from which `logitOffset` is added to step logits (and all exit modes drawn from them).
    var alterFromStep: Int?
    var logitOffset: Float = 0
    var pdfOffset: Float = 0
    var greedyOffset = 0
    /// Multiplies every final-logit row by this (sharpening changes KL without changing the argmax).
    var finalScale: Float = 1

    init(bundle: ReferenceBundle) { self.bundle = bundle }

    var dimensions: ModelDimensions {
        ModelDimensions(vocab: bundle.vocab, steps: bundle.steps, hidden: bundle.hidden ?? 0)
    }

    private var cache: [[Int]: ReferencePrompt] = [:]

    private func prompt(for tokens: [Int]) throws -> ReferencePrompt {
        if cache.isEmpty {
            for layout in bundle.prompts {
                let p = try bundle.load(layout)
                cache[p.inputIDs] = p
            }
        }
        guard let p = cache[tokens] else { fatalError("unknown prompt") }
        return p
    }

    func run(tokens: [Int], request: OutputRequest) throws -> ModelRun {
        let p = try prompt(for: tokens)
        let s = bundle.steps, t = tokens.count, v = bundle.vocab
        let altered = { (step: Int, logits: [Float]) -> [Float] in
            guard let from = self.alterFromStep, step >= from else { return logits }
            return logits.map { $0 + self.logitOffset * Float(step - from + 1) }
        }
        let steps = (0..<s).map { altered($0, Array(p.stepLogits[$0 * t * v..<($0 + 1) * t * v])) }
        let hidden = p.stepHidden.map { h in (0..<s).map { Array(h[$0 * t * bundle.hidden!..<($0 + 1) * t * bundle.hidden!]) } }
        let pdf = (0..<t).map { row in (0..<s).map { p.exitPDF[row * s + $0] + (row == 0 && $0 == s - 1 ? pdfOffset : 0) } }
        return ModelRun(
            stepLogits: steps, stepHidden: hidden,
            gateLogits: (0..<s).map { Array(p.gateLogits[$0 * t..<($0 + 1) * t]) },
            exitPDF: pdf,
            finalLogits: altered(s - 1, p.finalLogits).map { $0 * finalScale },
            weightedLogits: request.weighted ? p.weightedLogits : nil,
            thresholdLogits: p.thresholds.map(\.logits),
            thresholdExitSteps: p.thresholds.map(\.exitSteps),
            exitAtStepLogits: p.exitAtStep.map { altered($0.step, $0.logits) })
    }

    func greedy(prompt tokens: [Int], maxNewTokens: Int, cached: Bool) throws -> [Int] {
        var out = try prompt(for: tokens).greedyCached!
        if greedyOffset != 0 { out[out.count - 1] = (out[out.count - 1] + greedyOffset) % bundle.vocab }
        return Array(out.prefix(maxNewTokens))
    }
}
