import Foundation

/// The outcome of one validation run. Encoded as JSON with snake_case keys (see Formats/reference-bundle.md).
/// Loop steps are 1-based everywhere in the report (`step` 1 = the state after the first loop iteration);
/// the bundle's tensor names stay 0-based as upstream.
public struct ValidationReport: Codable, Sendable {
    public var pass: Bool
    public var modelFile: String
    public var modelType: String
    public var bundleFile: String
    public var bundleDeclaresFormat: Bool
    public var promptCount: Int
    public var tokenCount: Int
    public var criteria: PassCriteria
    /// Threshold keys compared, as written in the bundle ("0.5").
    public var thresholds: [String]
    public var final: LogitErrors
    public var steps: [StepErrors]
    public var exit: ExitErrors
    public var greedy: GreedyResult
    public var perplexity: PerplexityResult?
    public var prompts: [PromptResult]
    /// One line per failed criterion: value vs limit and the first loop step where it goes wrong.
    public var reasons: [String]
    /// 1-based loop step where the first failing criterion is first violated, when it can be located.
    public var firstDivergingStep: Int?
    // For the comparison table and the HTML report (absent in reports from older versions).
    /// Size of the model file on disk (a checkpoint folder: its safetensors files).
    public var modelBytes: Int? = nil
    /// Bits per weight: stored tensor bytes x 8 / parameters.
    public var bitsPerWeight: Double? = nil
    public var exitDistribution: ExitDistribution? = nil
    public var finalKLDHistogram: KLDHistogram? = nil
    /// The positions with the largest final KLD, largest first.
    public var worstPositions: [WorstPosition]? = nil
    /// The decode path (`ouro validate --decode-path`): every position computed one token at a time
    /// through the KV cache, against the same reference.
    public var decodePath: DecodePathErrors? = nil
    /// Mean KLD at the last loop step over mean KLD at the first: how much the error grows as the
    /// shared weights are applied again (absent when the first step's KLD is 0).
    public var kldGrowth: Double? = nil

    enum CodingKeys: String, CodingKey {
        case pass, criteria, thresholds, final, steps, exit, greedy, perplexity, prompts, reasons
        case modelFile = "model_file", modelType = "model_type", bundleFile = "bundle_file"
        case bundleDeclaresFormat = "bundle_declares_format", promptCount = "prompt_count"
        case tokenCount = "token_count", firstDivergingStep = "first_diverging_step"
        case modelBytes = "model_bytes", bitsPerWeight = "bits_per_weight", exitDistribution = "exit_distribution"
        case finalKLDHistogram = "final_kld_histogram", worstPositions = "worst_positions"
        case decodePath = "decode_path", kldGrowth = "kld_growth"
    }

    /// JSON text; non-finite numbers (a NaN-producing model) are written as the strings "inf"/"-inf"/"nan".
    public func jsonData() throws -> Data {
        try Self.encoder().encode(self)
    }

    public static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return encoder
    }

    public static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return decoder
    }
}

/// Logit errors against the reference over all positions of all prompts.
public struct LogitErrors: Codable, Sendable, Equatable {
    public var maxAbsLogitError: Double
    /// ||model - reference|| / ||reference|| over all logits.
    public var relativeRMSError: Double
    /// KL(reference || model) in nats per position: mean, nearest-rank p99, max.
    public var kldMean: Double
    public var kldP99: Double
    public var kldMax: Double
    /// Share of positions whose argmax agrees.
    public var top1Agreement: Double
    public var positions: Int
    // The distribution as llama-perplexity prints it, so two files can be told apart: the standard
    // error of the mean KLD and of top-1, and more nearest-rank percentiles. Optional so reports
    // written before they existed still decode.
    /// sqrt(var / (n - 1)) of the per-position KLD.
    public var kldMeanStderr: Double?
    public var kldMedian: Double?
    public var kldP90: Double?
    public var kldP95: Double?
    public var kldP999: Double?
    /// sqrt(p (1 - p) / (n - 1)).
    public var top1AgreementStderr: Double?

    public init(maxAbsLogitError: Double, relativeRMSError: Double, kldMean: Double, kldP99: Double, kldMax: Double,
                top1Agreement: Double, positions: Int, kldMeanStderr: Double? = nil, kldMedian: Double? = nil,
                kldP90: Double? = nil, kldP95: Double? = nil, kldP999: Double? = nil, top1AgreementStderr: Double? = nil) {
        self.maxAbsLogitError = maxAbsLogitError; self.relativeRMSError = relativeRMSError
        self.kldMean = kldMean; self.kldP99 = kldP99; self.kldMax = kldMax
        self.top1Agreement = top1Agreement; self.positions = positions
        self.kldMeanStderr = kldMeanStderr; self.kldMedian = kldMedian; self.kldP90 = kldP90
        self.kldP95 = kldP95; self.kldP999 = kldP999; self.top1AgreementStderr = top1AgreementStderr
    }

    enum CodingKeys: String, CodingKey {
        case positions
        case maxAbsLogitError = "max_abs_logit_error", relativeRMSError = "rel_rms_error"
        case kldMean = "kld_mean", kldP99 = "kld_p99", kldMax = "kld_max", top1Agreement = "top1_agreement"
        case kldMeanStderr = "kld_mean_stderr", kldMedian = "kld_median", kldP90 = "kld_p90", kldP95 = "kld_p95"
        case kldP999 = "kld_p999", top1AgreementStderr = "top1_agreement_stderr"
    }
}

/// One loop step's errors (1-based `step`).
public struct StepErrors: Codable, Sendable, Equatable {
    public var step: Int
    public var logits: LogitErrors
    /// max |Δ| of the normed hidden state after this step (nil when the bundle has no step_hidden).
    public var hiddenMaxAbsError: Double?
    public var gateLogitMaxAbsError: Double
    /// max over positions of |Δ exit_pdf[t, step]|.
    public var exitPDFMaxAbsError: Double

    enum CodingKeys: String, CodingKey {
        case step
        case hiddenMaxAbsError = "hidden_max_abs_error", gateLogitMaxAbsError = "gate_logit_max_abs_error"
        case exitPDFMaxAbsError = "exit_pdf_max_abs_error"
        case maxAbsLogitError = "max_abs_logit_error", relativeRMSError = "rel_rms_error"
        case kldMean = "kld_mean", kldP99 = "kld_p99", kldMax = "kld_max", top1Agreement = "top1_agreement"
        case positions
        case kldMeanStderr = "kld_mean_stderr", kldMedian = "kld_median", kldP90 = "kld_p90", kldP95 = "kld_p95"
        case kldP999 = "kld_p999", top1AgreementStderr = "top1_agreement_stderr"
    }

    public init(step: Int, logits: LogitErrors, hiddenMaxAbsError: Double?, gateLogitMaxAbsError: Double,
                exitPDFMaxAbsError: Double) {
        self.step = step; self.logits = logits; self.hiddenMaxAbsError = hiddenMaxAbsError
        self.gateLogitMaxAbsError = gateLogitMaxAbsError; self.exitPDFMaxAbsError = exitPDFMaxAbsError
    }

    // The logit fields sit flat in the step object, as in "final".
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        step = try c.decode(Int.self, forKey: .step)
        logits = try LogitErrors(from: decoder)
        hiddenMaxAbsError = try c.decodeIfPresent(Double.self, forKey: .hiddenMaxAbsError)
        gateLogitMaxAbsError = try c.decode(Double.self, forKey: .gateLogitMaxAbsError)
        exitPDFMaxAbsError = try c.decode(Double.self, forKey: .exitPDFMaxAbsError)
    }

    public func encode(to encoder: Encoder) throws {
        try logits.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(step, forKey: .step)
        try c.encodeIfPresent(hiddenMaxAbsError, forKey: .hiddenMaxAbsError)
        try c.encode(gateLogitMaxAbsError, forKey: .gateLogitMaxAbsError)
        try c.encode(exitPDFMaxAbsError, forKey: .exitPDFMaxAbsError)
    }
}

/// Exit modes: the exit distribution, threshold exits, fixed-step exits and the weighted mixture.
public struct ExitErrors: Codable, Sendable, Equatable {
    public var pdfMaxAbsError: Double
    /// Threshold key -> share of tokens whose exit step equals the reference's.
    public var thresholdStepAgreement: [String: Double]
    /// Threshold key -> errors of the logits selected by that threshold.
    public var thresholdLogits: [String: LogitErrors]
    /// Fixed exits, `step` 1-based (bundle tensor exit_at_step_1 is step 2 here).
    public var exitAtStep: [StepLogits]
    public var weighted: LogitErrors?

    enum CodingKeys: String, CodingKey {
        case weighted
        case pdfMaxAbsError = "pdf_max_abs_error", thresholdStepAgreement = "threshold_step_agreement"
        case thresholdLogits = "threshold_logits", exitAtStep = "exit_at_step"
    }
}

public struct StepLogits: Codable, Sendable, Equatable {
    public var step: Int
    public var logits: LogitErrors
}

/// Greedy generation. `tokensMatched` counts the common prefix (after the first difference the
/// continuations are conditioned on different text, so later positions say nothing).
public struct GreedyResult: Codable, Sendable, Equatable {
    public var match: Bool
    public var tokensMatched: Int
    public var tokensTotal: Int
    public var cached: GreedyCount
    public var uncached: GreedyCount

    enum CodingKeys: String, CodingKey {
        case match, cached, uncached
        case tokensMatched = "tokens_matched", tokensTotal = "tokens_total"
    }
}

public struct GreedyCount: Codable, Sendable, Equatable {
    public var matched: Int
    public var total: Int
    public var prompts: Int
}

/// exp(mean cross-entropy) of the labels under the final logits, reference and model.
public struct PerplexityResult: Codable, Sendable, Equatable {
    public var reference: Double
    public var model: Double
    /// model / reference
    public var ratio: Double
    public var tokens: Int
}

/// Per-prompt breakdown (`prompt` = N of the bundle's pN).
public struct PromptResult: Codable, Sendable, Equatable {
    public var prompt: Int
    public var tokens: Int
    public var final: LogitErrors
    /// max |Δlogit| per loop step, step 1 first.
    public var stepMaxAbsLogitError: [Double]
    public var exitPDFMaxAbsError: Double
    public var greedyCached: [Int]?
    public var greedyReference: [Int]?

    enum CodingKeys: String, CodingKey {
        case prompt, tokens, final
        case stepMaxAbsLogitError = "step_max_abs_logit_error", exitPDFMaxAbsError = "exit_pdf_max_abs_error"
        case greedyCached = "greedy_model", greedyReference = "greedy_reference"
    }
}

/// Several files validated against one reference: `{"models": [<one report per file>]}`.
public struct MultiModelReport: Codable, Sendable {
    public var models: [ValidationReport]
    public init(models: [ValidationReport]) { self.models = models }

    public func jsonData() throws -> Data { try ValidationReport.encoder().encode(self) }
}

/// The decode path's errors: the final logits' keys flat (as in "final"), then one entry per loop step.
public struct DecodePathErrors: Codable, Sendable, Equatable {
    /// "f16, full sharing": the cache the positions went through.
    public var kvCache: String
    /// Tokens of each prompt run at once before the one-at-a-time positions.
    public var prefillTokens: Int
    public var final: LogitErrors
    public var steps: [StepLogits]
    /// The same positions with real early exit (`validate --early-exit threshold:Q`), else nil.
    public var earlyExit: EarlyExitErrors?

    public init(kvCache: String, prefillTokens: Int, final: LogitErrors, steps: [StepLogits],
                earlyExit: EarlyExitErrors? = nil) {
        self.kvCache = kvCache; self.prefillTokens = prefillTokens; self.final = final; self.steps = steps
        self.earlyExit = earlyExit
    }

    enum CodingKeys: String, CodingKey {
        case steps
        case kvCache = "kv_cache", prefillTokens = "prefill_tokens", earlyExit = "early_exit"
    }

    private struct FlatStep: Codable {
        var step: Int
        var logits: LogitErrors
        enum CodingKeys: String, CodingKey { case step }
        init(_ s: StepLogits) { step = s.step; logits = s.logits }
        init(from decoder: Decoder) throws {
            step = try decoder.container(keyedBy: CodingKeys.self).decode(Int.self, forKey: .step)
            logits = try LogitErrors(from: decoder)
        }
        func encode(to encoder: Encoder) throws {
            try logits.encode(to: encoder)
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(step, forKey: .step)
        }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kvCache = try c.decode(String.self, forKey: .kvCache)
        prefillTokens = try c.decode(Int.self, forKey: .prefillTokens)
        final = try LogitErrors(from: decoder)
        steps = try c.decode([FlatStep].self, forKey: .steps).map { StepLogits(step: $0.step, logits: $0.logits) }
        earlyExit = try c.decodeIfPresent(EarlyExitErrors.self, forKey: .earlyExit)
    }

    public func encode(to encoder: Encoder) throws {
        try final.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(kvCache, forKey: .kvCache)
        try c.encode(prefillTokens, forKey: .prefillTokens)
        try c.encode(steps.map(FlatStep.init), forKey: .steps)
        try c.encodeIfPresent(earlyExit, forKey: .earlyExit)
    }
}

/// The decode path with real early exit at a threshold, over the one-at-a-time positions (the prefill
/// runs every step): the loop steps they ran and how their logits differ from full depth.
public struct EarlyExitErrors: Codable, Sendable, Equatable {
    public var threshold: Double
    /// The model's loop steps (every position runs at most this many).
    public var loopCount: Int
    /// One-at-a-time positions compared, over all prompts.
    public var positions: Int
    public var meanLoopSteps: Double
    public var maxLoopSteps: Int
    /// Early-exit logits vs the full-depth decode path's final logits (the model's default exit mode):
    /// KL(full ‖ early), top-1 agreement. What early exit changes in the output.
    public var vsFullDepth: LogitErrors
    /// Early-exit logits vs the same threshold mode with every step computed (each position's exit
    /// step): the cost of the deeper steps' K/V being the exit step's copy.
    public var vsThresholdFullDepth: LogitErrors

    public init(threshold: Double, loopCount: Int, positions: Int, meanLoopSteps: Double, maxLoopSteps: Int,
                vsFullDepth: LogitErrors, vsThresholdFullDepth: LogitErrors) {
        self.threshold = threshold; self.loopCount = loopCount; self.positions = positions
        self.meanLoopSteps = meanLoopSteps; self.maxLoopSteps = maxLoopSteps
        self.vsFullDepth = vsFullDepth; self.vsThresholdFullDepth = vsThresholdFullDepth
    }

    enum CodingKeys: String, CodingKey {
        case threshold, positions
        case loopCount = "loop_count", meanLoopSteps = "mean_loop_steps", maxLoopSteps = "max_loop_steps"
        case vsFullDepth = "vs_full_depth", vsThresholdFullDepth = "vs_threshold_full_depth"
    }
}
