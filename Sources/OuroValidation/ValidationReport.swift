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

    enum CodingKeys: String, CodingKey {
        case pass, criteria, thresholds, final, steps, exit, greedy, perplexity, prompts, reasons
        case modelFile = "model_file", modelType = "model_type", bundleFile = "bundle_file"
        case bundleDeclaresFormat = "bundle_declares_format", promptCount = "prompt_count"
        case tokenCount = "token_count", firstDivergingStep = "first_diverging_step"
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

    enum CodingKeys: String, CodingKey {
        case positions
        case maxAbsLogitError = "max_abs_logit_error", relativeRMSError = "rel_rms_error"
        case kldMean = "kld_mean", kldP99 = "kld_p99", kldMax = "kld_max", top1Agreement = "top1_agreement"
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
