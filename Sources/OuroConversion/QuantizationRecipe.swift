import OuroModel
import Quantization

/// Decides each quantizable tensor's type (projections, token_embd, output); norms and the exit gate
/// always stay F32. A recipe is a default type plus per-tensor overrides: a uniform `--type`, a preset
/// named as llama.cpp names it (`q4_k_m`, `q4_k_s`), or the per-tensor map of the loop-aware search.
/// Rows that are not whole blocks of the chosen type fall back in `ConversionPlan`.
public struct QuantizationRecipe: Sendable, Equatable {
    /// Stored as `ouro.quantization.recipe`: "q8_0", "q4_k_m", "loop"...
    public var name: String
    /// llama.cpp's `llama_ftype` number stored as `general.file_type`.
    public var fileType: UInt32
    public var defaultType: GGMLType
    /// GGUF tensor name -> type, for tensors that do not take `defaultType`.
    public var overrides: [String: GGMLType]
    /// Q4_0 tensors use the least-squares scale search (still plain Q4_0 blocks) instead of ggml's
    /// reference max/-8 rounding. Off for `--type q4_0`, so that file is ggml's Q4_0 exactly.
    public var searchedQ4_0: Bool

    public init(name: String, fileType: UInt32, defaultType: GGMLType, overrides: [String: GGMLType] = [:],
                searchedQ4_0: Bool = false) {
        self.name = name
        self.fileType = fileType
        self.defaultType = defaultType
        self.overrides = overrides
        self.searchedQ4_0 = searchedQ4_0
    }

    /// The type a quantizable tensor takes before any block-size fallback.
    public func type(for ggufName: String) -> GGMLType {
        overrides[ggufName] ?? defaultType
    }

    /// Every matrix in `type`.
    public static func uniform(_ type: GGMLType) -> QuantizationRecipe {
        QuantizationRecipe(name: type.name.lowercased(), fileType: fileType(uniform: type), defaultType: type)
    }

    /// llama.cpp's `llama_ftype` for a file whose matrices are all `type` (the k-quants alone have no
    /// number of their own: Q3_K, Q4_K and Q5_K take their _S mixes', MOSTLY_Q3_K_S, Q4_K_S, Q5_K_S).
    public static func fileType(uniform type: GGMLType) -> UInt32 {
        switch type {
        case .f32: return 0
        case .f16: return 1
        case .q4_0: return 2
        case .q8_0: return 7
        case .q3_K: return 11
        case .q4_K: return 14
        case .q5_K: return 16
        case .q6_K: return 18
        case .iq4_nl: return 25
        case .iq4_xs: return 30
        case .bf16: return 32
        }
    }

    /// `general.file_type` of files written from the loop-aware search: outside llama.cpp's range
    /// (no llama.cpp mix means the same), documented in Docs/QUANTIZATION.md.
    public static let loopFileType: UInt32 = 1024

    public static let presetNames = ["q4_k_m", "q4_k_s", "iq4_xs_mix"]

    /// llama.cpp's mixes for a model with `config.layerCount` blocks (llama_tensor_get_type):
    /// - q4_k_m (ftype 15): Q4_K; output Q6_K; attn_v and ffn_down Q6_K in the layers use_more_bits
    ///   picks (the first and last eighth, and every third in between).
    /// - q4_k_s (ftype 14): Q4_K; output Q6_K; attn_v of the first 4 layers and ffn_down of the first
    ///   eighth Q5_K.
    /// - iq4_xs_mix (ftype 30, llama-quantize's IQ4_XS): IQ4_XS; output Q6_K; attn_v Q5_K when 4 or
    ///   more query heads share a key/value head; ffn_down of the first eighth Q5_K unless quantized
    ///   with importance (`importance`). Named apart from `--type iq4_xs`, which is IQ4_XS throughout.
    /// With tied embeddings token_embd is the output matrix and takes the output's type.
    public static func preset(_ name: String, config: OuroConfiguration, importance: Bool = false) -> QuantizationRecipe? {
        let n = config.layerCount
        let outputName = config.tieWordEmbeddings ? "token_embd.weight" : "output.weight"
        var overrides: [String: GGMLType] = [outputName: .q6_K]
        switch name.lowercased() {
        case "q4_k_m":
            for i in 0..<n where useMoreBits(i, n) {
                overrides["blk.\(i).attn_v.weight"] = .q6_K
                overrides["blk.\(i).ffn_down.weight"] = .q6_K
            }
            return QuantizationRecipe(name: "q4_k_m", fileType: 15, defaultType: .q4_K, overrides: overrides)
        case "q4_k_s":
            for i in 0..<n where i < 4 { overrides["blk.\(i).attn_v.weight"] = .q5_K }
            for i in 0..<n where i < n / 8 { overrides["blk.\(i).ffn_down.weight"] = .q5_K }
            return QuantizationRecipe(name: "q4_k_s", fileType: 14, defaultType: .q4_K, overrides: overrides)
        case "iq4_xs_mix":
            // llama.cpp's n_gqa() is n_head / n_head_kv.
            if config.headCount / Swift.max(1, config.kvHeadCount) >= 4 {
                for i in 0..<n { overrides["blk.\(i).attn_v.weight"] = .q5_K }
            }
            if !importance {
                for i in 0..<n where i < n / 8 { overrides["blk.\(i).ffn_down.weight"] = .q5_K }
            }
            return QuantizationRecipe(name: "iq4_xs_mix", fileType: 30, defaultType: .iq4_xs, overrides: overrides)
        default:
            return nil
        }
    }

    /// llama.cpp's `use_more_bits(i_layer, n_layers)`.
    public static func useMoreBits(_ i: Int, _ n: Int) -> Bool {
        i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
    }
}
