import OuroModel

/// What a reference records besides the step logits, gate logits, exit pdf and final logits
/// (always present). Defaults mirror `Scripts/reference_logits.py`.
public struct ReferenceContents: Sendable, Equatable {
    /// Thresholds as the text used in tensor names ("0.5").
    public var thresholds: [ThresholdKey]
    /// 0-based loop steps for `exit_at_step_<k>.logits`.
    public var exitAtSteps: [Int]
    public var weighted: Bool
    public var stepHidden: Bool
    /// New tokens of greedy generation to record, cached and uncached (0: none).
    public var greedyTokens: Int

    public init(thresholds: [ThresholdKey] = [ThresholdKey("0.5")!, ThresholdKey("0.9")!], exitAtSteps: [Int] = [1],
                weighted: Bool = true, stepHidden: Bool = true, greedyTokens: Int = 12) {
        self.thresholds = thresholds; self.exitAtSteps = exitAtSteps; self.weighted = weighted
        self.stepHidden = stepHidden; self.greedyTokens = greedyTokens
    }

    /// Only what the comparison of quantized files needs: step and final logits, gates, exit pdf.
    public static let logitsOnly = ReferenceContents(thresholds: [], exitAtSteps: [], weighted: false,
                                                     stepHidden: false, greedyTokens: 0)
}

/// One prompt to record: token ids and, optionally, next-token labels (negative = not scored).
public struct ReferenceInput: Sendable, Equatable {
    public var tokens: [Int]
    public var labels: [Int]?
    public init(tokens: [Int], labels: [Int]? = nil) { self.tokens = tokens; self.labels = labels }
}

/// Computes reference tensors with our runtime in float32, exactly as the PyTorch script lays
/// them out (Formats/reference-bundle.md), from a lossless model.
public final class ReferenceProducer {
    public let weights: OuroWeights
    public let contents: ReferenceContents
    private let target: OuroRunnerTarget

    public init(weights: OuroWeights, contents: ReferenceContents) {
        self.weights = weights
        // Exit-at-step values outside the loop are skipped, as the script does.
        var contents = contents
        contents.exitAtSteps = contents.exitAtSteps.filter { (0..<weights.config.loopCount).contains($0) }
        self.contents = contents
        target = OuroRunnerTarget(weights: weights)
    }

    public var dimensions: ModelDimensions { target.dimensions }

    /// The layout a prompt will have, known before running it (the bundle header is written first).
    public func layout(index: Int, input: ReferenceInput) -> PromptLayout {
        PromptLayout(index: index, tokens: input.tokens.count,
                     thresholds: contents.thresholds.sorted { $0.value < $1.value },
                     exitAtSteps: contents.exitAtSteps.sorted(), hasStepHidden: contents.stepHidden,
                     hasWeighted: contents.weighted, hasLabels: input.labels != nil,
                     greedyCachedCount: contents.greedyTokens > 0 ? contents.greedyTokens : nil,
                     greedyUncachedCount: contents.greedyTokens > 0 ? contents.greedyTokens : nil)
    }

    /// Runs one prompt.
    public func produce(index: Int, input: ReferenceInput) throws -> ReferencePrompt {
        let layout = layout(index: index, input: input)
        let request = OutputRequest(thresholds: layout.thresholds.map(\.value), exitAtSteps: layout.exitAtSteps,
                                    weighted: layout.hasWeighted)
        let run = try target.run(tokens: input.tokens, request: request)
        var greedyCached: [Int]?, greedyUncached: [Int]?
        if contents.greedyTokens > 0 {
            greedyCached = try target.greedy(prompt: input.tokens, maxNewTokens: contents.greedyTokens, cached: true)
            greedyUncached = try target.greedy(prompt: input.tokens, maxNewTokens: contents.greedyTokens, cached: false)
        }
        return ReferencePrompt(
            layout: layout, inputIDs: input.tokens,
            stepLogits: Array(run.stepLogits.joined()),
            stepHidden: layout.hasStepHidden ? run.stepHidden.map { Array($0.joined()) } : nil,
            gateLogits: Array(run.gateLogits.joined()),
            exitPDF: Array(run.exitPDF.joined()),
            finalLogits: run.finalLogits,
            weightedLogits: run.weightedLogits,
            thresholds: layout.thresholds.enumerated().map { i, key in
                ThresholdReference(key: key.key, value: key.value, logits: run.thresholdLogits[i],
                                   exitSteps: run.thresholdExitSteps[i])
            },
            exitAtStep: layout.exitAtSteps.enumerated().map { i, k in StepReference(step: k, logits: run.exitAtStepLogits[i]) },
            greedyCached: greedyCached, greedyUncached: greedyUncached, labels: input.labels)
    }
}

/// A reference computed on the fly from a lossless model: each prompt is run when the validator
/// asks for it and dropped after, so memory does not grow with the amount of text.
public final class LiveReference: ReferenceSource {
    public let producer: ReferenceProducer
    public let inputs: [ReferenceInput]
    public let prompts: [PromptLayout]
    public var path: String { producer.weights.source }
    public var declaresFormat: Bool { true }
    public var steps: Int { producer.dimensions.steps }
    public var vocab: Int { producer.dimensions.vocab }
    public var hidden: Int? { producer.contents.stepHidden ? producer.dimensions.hidden : nil }

    public init(producer: ReferenceProducer, inputs: [ReferenceInput]) {
        self.producer = producer
        self.inputs = inputs
        prompts = inputs.enumerated().map { producer.layout(index: $0, input: $1) }
    }

    public func check(against model: ModelDimensions) throws { try checkDimensions(against: model) }

    public func load(_ layout: PromptLayout) throws -> ReferencePrompt {
        try producer.produce(index: layout.index, input: inputs[layout.index])
    }
}
