import Foundation

/// The limits a model file must meet. Chosen by file type (`forFileType`) and overridable field by field;
/// a nil limit is not checked. The values and how they were measured are in Formats/reference-bundle.md.
public struct PassCriteria: Codable, Sendable, Equatable {
    public var name: String
    /// Every loop step's logits, the final logits and every exit mode's logits: max |Δ| <= this.
    public var maxAbsLogitError: Double?
    public var exitPDFMaxAbsError: Double?
    public var requireGreedyMatch: Bool
    public var requireThresholdStepMatch: Bool
    /// Limits on the final logits' distribution (quantized files).
    public var finalKLDMean: Double?
    public var finalKLDP99: Double?
    public var finalTop1Min: Double?

    enum CodingKeys: String, CodingKey {
        case name
        case maxAbsLogitError = "max_abs_logit_error", exitPDFMaxAbsError = "exit_pdf_max_abs_error"
        case requireGreedyMatch = "require_greedy_match", requireThresholdStepMatch = "require_threshold_step_match"
        case finalKLDMean = "final_kld_mean", finalKLDP99 = "final_kld_p99", finalTop1Min = "final_top1_min"
    }

    public init(name: String, maxAbsLogitError: Double? = nil, exitPDFMaxAbsError: Double? = nil,
                requireGreedyMatch: Bool = false, requireThresholdStepMatch: Bool = false,
                finalKLDMean: Double? = nil, finalKLDP99: Double? = nil, finalTop1Min: Double? = nil) {
        self.name = name
        self.maxAbsLogitError = maxAbsLogitError
        self.exitPDFMaxAbsError = exitPDFMaxAbsError
        self.requireGreedyMatch = requireGreedyMatch
        self.requireThresholdStepMatch = requireThresholdStepMatch
        self.finalKLDMean = finalKLDMean
        self.finalKLDP99 = finalKLDP99
        self.finalTop1Min = finalTop1Min
    }

    /// f32 files, and f16/bf16 files that hold the source weights exactly: float32 arithmetic in a
    /// different order than PyTorch's, nothing more.
    public static let lossless = PassCriteria(
        name: "lossless", maxAbsLogitError: 1e-3, exitPDFMaxAbsError: 1e-4,
        requireGreedyMatch: true, requireThresholdStepMatch: true)

    // Set from measurement on ouro-trained-s (GGUF written by our quantizers): Q8_0 final KLD mean
    // 1.9e-5, p99 1.5e-4, top-1 100 %; Q4_0 3.8e-3, p99 3.3e-2, top-1 95.3 % (ggml's own numbers for
    // this model). Limits sit 5-50x above those; see Formats/reference-bundle.md.
    public static let q8_0 = PassCriteria(name: "q8_0", finalKLDMean: 1e-3, finalKLDP99: 1e-2, finalTop1Min: 0.98)
    public static let q4_0 = PassCriteria(name: "q4_0", finalKLDMean: 2e-2, finalKLDP99: 0.2, finalTop1Min: 0.90)

    // The 4.5-5 bpw encodings and mixes (Q4_K, IQ4_NL, q4_k_m, q4_k_s, the loop search), measured on
    // ouro-trained-s: final KLD mean 1.4e-3..3.6e-3, p99 <= 3.3e-2, top-1 >= 95.5 % (Docs/QUANTIZATION.md).
    // The limits sit where a broken encoding (wrong scale layout, a misplaced block) fails and any
    // honest 4-bit one passes: half of Q4_0's.
    public static let q4 = PassCriteria(name: "q4", finalKLDMean: 1e-2, finalKLDP99: 0.1, finalTop1Min: 0.93)
    // Q6_K (6.97 bpw here: ffn_down falls back to Q8_0) measured: final KLD mean 1.3e-4, p99 1.9e-3,
    // top-1 98.9 % (Docs/QUANTIZATION.md); limits 10-15x above, between Q8_0 and the 4-bit ones.
    public static let q6_K = PassCriteria(name: "q6_k", finalKLDMean: 2e-3, finalKLDP99: 2e-2, finalTop1Min: 0.97)

    /// f16/bf16 files that round some source values (e.g. a bf16 checkpoint stored as f16, or an f32
    /// one stored as bf16): 16-bit rounding of the weights, far below any quantization error.
    public static let nearLossless = PassCriteria(name: "near-lossless", finalKLDMean: 1e-4, finalKLDP99: 1e-3, finalTop1Min: 0.99)

    /// Criteria for a file type name as in GGMLType.name ("F32", "BF16", "Q8_0"...), case-insensitive.
    /// Float types count as lossless: converting a bf16 checkpoint to f16 is not exact in general,
    /// so an f16 file of a bf16 source that fails here should be judged with `q8_0` limits.
    /// Recipe names as stored in `ouro.quantization.recipe` ("q4_k_m", "loop", "q4_k+imatrix") work too.
    public static func forFileType(_ type: String?) -> PassCriteria {
        let base = type?.uppercased().split(separator: "+").first.map(String.init)
        switch base {
        case "Q8_0": return .q8_0
        case "Q4_0": return .q4_0
        case "Q6_K": return .q6_K
        case "Q4_K", "IQ4_NL", "Q4_K_M", "Q4_K_S", "LOOP": return .q4
        // Measured on ouro-trained-s (Docs/QUANTIZATION.md): Q5_K final KLD mean 4.0e-4, IQ4_XS 3.4e-3,
        // the IQ4_XS mix 2.9e-3 (top-1 >= 95.7 %): the 4-bit limits. Q3_K 8.3e-3, p99 5.6e-2, top-1
        // 92.3 %: within Q4_0's limits, not the 4-bit ones.
        case "Q5_K", "IQ4_XS", "IQ4_XS_MIX": return .q4
        case "Q3_K": return .q4_0
        default: return .lossless
        }
    }

    /// Limits in text for the OK line: "every step max|Δlogit| <= 0.001, exit pdf <= 0.0001, greedy equal".
    public var summary: String {
        var parts: [String] = []
        if let v = maxAbsLogitError { parts.append("every step max|Δlogit| <= \(format(v))") }
        if let v = exitPDFMaxAbsError { parts.append("exit pdf <= \(format(v))") }
        if requireThresholdStepMatch { parts.append("threshold exit steps equal") }
        if requireGreedyMatch { parts.append("greedy equal") }
        if let v = finalKLDMean { parts.append("final KLD mean <= \(format(v))") }
        if let v = finalKLDP99 { parts.append("final KLD p99 <= \(format(v))") }
        if let v = finalTop1Min { parts.append("final top-1 >= \(format(v))") }
        return "\(name): " + (parts.isEmpty ? "no limits" : parts.joined(separator: ", "))
    }
}

/// Short numbers for human text: 0.001 -> "0.001", 2.5e-05 -> "2.5e-05", 0.98 -> "0.98".
func format(_ x: Double) -> String {
    if !x.isFinite { return x.isNaN ? "nan" : (x > 0 ? "inf" : "-inf") }
    return String(format: "%.3g", x)
}
