import OuroModel

/// The runtime as a validation target: every exit mode comes from the runtime's own LoopOutputs,
/// so its exit-pdf, threshold and weighted code is what gets checked.
public final class OuroRunnerTarget: ValidationTarget {
    public let weights: OuroWeights
    public let runner: OuroRunner
    public var dimensions: ModelDimensions {
        ModelDimensions(vocab: weights.config.vocabSize, steps: weights.config.loopCount, hidden: weights.config.hiddenSize)
    }
    /// "F32", "BF16", "Q8_0"... from the projection matrices; "mixed" when they differ.
    public var fileTypeName: String { weights.fileType?.name ?? "mixed" }

    /// The KV cache of greedy generation and the decode path.
    public var kv: KVCacheOptions

    public init(weights: OuroWeights, kv: KVCacheOptions = .exact) {
        self.weights = weights
        self.kv = kv
        runner = OuroRunner(weights: weights)
    }

    public var kvCacheDescription: String { "\(kv.type.rawValue), \(kv.sharing.rawValue) sharing" }

    public func decodePath(tokens: [Int], prefill: Int) throws -> ModelRun {
        let out = try runner.decodePath(tokens: tokens, prefill: prefill, kv: kv)
        return ModelRun(stepLogits: out.stepLogits, stepHidden: out.stepHidden, gateLogits: out.gateLogits,
                        exitPDF: out.exitPDF(), finalLogits: out.logits(ExitMode.default(for: weights.config)),
                        weightedLogits: nil, thresholdLogits: [], thresholdExitSteps: [], exitAtStepLogits: [])
    }

    public func earlyExitDecodePath(tokens: [Int], prefill: Int, threshold: Float) throws -> (logits: [Float], loopSteps: [Int]) {
        let path = try runner.earlyExitDecodePath(tokens: tokens, prefill: prefill, kv: kv, threshold: threshold)
        return (path.logits, path.loopSteps)
    }

    public func run(tokens: [Int], request: OutputRequest) throws -> ModelRun {
        let out = try runner.forward(tokens: tokens)
        // final_logits are upstream's forward without exit arguments: the threshold branch with the
        // config's early_exit_threshold (1.0 in real checkpoints), else the last step.
        let finalMode = ExitMode.default(for: weights.config)
        return ModelRun(
            stepLogits: out.stepLogits,
            stepHidden: out.stepHidden,
            gateLogits: out.gateLogits,
            exitPDF: out.exitPDF(),
            finalLogits: out.logits(finalMode),
            weightedLogits: request.weighted ? out.logits(.weighted) : nil,
            thresholdLogits: request.thresholds.map { out.logits(.threshold($0)) },
            thresholdExitSteps: request.thresholds.map { out.exitSteps(threshold: $0) },
            exitAtStepLogits: request.exitAtSteps.map { out.logits(.step($0)) })
    }

    public func greedy(prompt: [Int], maxNewTokens: Int, cached: Bool) throws -> [Int] {
        // The reference generated with upstream's default forward; EOS stopping was disabled.
        try runner.generate(prompt: prompt, maxNewTokens: maxNewTokens, cached: cached, exit: nil, kv: kv)
    }
}
