import ArgumentParser
import OuroModel
import OuroConversion
import Quantization

/// The `--type` choices of `ouro convert`: one ggml type for every matrix, a llama.cpp preset, or
/// `loop` (the loop-aware search under `--bpw`).
enum OutputType: String, ExpressibleByArgument, CaseIterable {
    case f32, f16, bf16
    case q8_0, q4_0
    case q3_k, q4_k, q5_k, q6_k, iq4_nl, iq4_xs
    case q4_k_m, q4_k_s, iq4_xs_mix
    case loop

    /// The single type of a uniform conversion; nil for presets and `loop`.
    var ggmlType: GGMLType? {
        switch self {
        case .f32: return .f32
        case .f16: return .f16
        case .bf16: return .bf16
        case .q8_0: return .q8_0
        case .q4_0: return .q4_0
        case .q3_k: return .q3_K
        case .q4_k: return .q4_K
        case .q5_k: return .q5_K
        case .q6_k: return .q6_K
        case .iq4_nl: return .iq4_nl
        case .iq4_xs: return .iq4_xs
        case .q4_k_m, .q4_k_s, .iq4_xs_mix, .loop: return nil
        }
    }
}
