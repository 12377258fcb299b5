/// What the validator needs from a model. `OuroRunnerTarget` adapts the runtime; tests use stand-ins.
public protocol ValidationTarget {
    var dimensions: ModelDimensions { get }
    /// One uncached forward over `tokens` with every output the reference holds.
    func run(tokens: [Int], request: OutputRequest) throws -> ModelRun
    /// Greedy continuation: the new token ids only.
    func greedy(prompt: [Int], maxNewTokens: Int, cached: Bool) throws -> [Int]
    /// Every position's step logits, gate logits, exit pdf and final logits computed as generation
    /// does: `prefill` tokens at once, then one token at a time through the KV cache.
    func decodePath(tokens: [Int], prefill: Int) throws -> ModelRun
    /// The decode path with real early exit at `threshold`: each position's exit-step logits [T*V]
    /// and the loop steps it ran [T].
    func earlyExitDecodePath(tokens: [Int], prefill: Int, threshold: Float) throws -> (logits: [Float], loopSteps: [Int])
    /// The KV cache the decode path and greedy generation use, as "f16, full sharing".
    var kvCacheDescription: String { get }
}

extension ValidationTarget {
    public func decodePath(tokens: [Int], prefill: Int) throws -> ModelRun {
        throw ValidationFailure.modelOutputMismatch(path: "target", what: "this target has no decode path")
    }
    public func earlyExitDecodePath(tokens: [Int], prefill: Int, threshold: Float) throws -> (logits: [Float], loopSteps: [Int]) {
        throw ValidationFailure.modelOutputMismatch(path: "target", what: "this target has no early-exit decode path")
    }
    public var kvCacheDescription: String { "-" }
}

/// Which exit modes to compute, as found in the bundle.
public struct OutputRequest: Sendable, Equatable {
    public var thresholds: [Float]
    /// 0-based steps.
    public var exitAtSteps: [Int]
    public var weighted: Bool
    public init(thresholds: [Float], exitAtSteps: [Int], weighted: Bool) {
        self.thresholds = thresholds; self.exitAtSteps = exitAtSteps; self.weighted = weighted
    }
}

/// A model's outputs for one prompt, laid out like LoopOutputs (steps outermost).
public struct ModelRun: Sendable {
    public var stepLogits: [[Float]]          // [S][T*V]
    public var stepHidden: [[Float]]?         // [S][T*H]
    public var gateLogits: [[Float]]          // [S][T]
    public var exitPDF: [[Float]]             // [T][S]
    public var finalLogits: [Float]           // [T*V]
    public var weightedLogits: [Float]?       // [T*V]
    public var thresholdLogits: [[Float]]     // request.thresholds order, each [T*V]
    public var thresholdExitSteps: [[Int]]    // request.thresholds order, each [T], 0-based
    public var exitAtStepLogits: [[Float]]    // request.exitAtSteps order, each [T*V]

    public init(stepLogits: [[Float]], stepHidden: [[Float]]?, gateLogits: [[Float]], exitPDF: [[Float]],
                finalLogits: [Float], weightedLogits: [Float]?, thresholdLogits: [[Float]],
                thresholdExitSteps: [[Int]], exitAtStepLogits: [[Float]]) {
        self.stepLogits = stepLogits; self.stepHidden = stepHidden; self.gateLogits = gateLogits
        self.exitPDF = exitPDF; self.finalLogits = finalLogits; self.weightedLogits = weightedLogits
        self.thresholdLogits = thresholdLogits; self.thresholdExitSteps = thresholdExitSteps
        self.exitAtStepLogits = exitAtStepLogits
    }
}
