import ArgumentParser
import Quantization

/// The `--type` choices of `ouro convert`.
enum OutputType: String, ExpressibleByArgument, CaseIterable {
    case f32, f16, bf16
    case q8_0, q4_0

    var ggmlType: GGMLType {
        switch self {
        case .f32: return .f32
        case .f16: return .f16
        case .bf16: return .bf16
        case .q8_0: return .q8_0
        case .q4_0: return .q4_0
        }
    }
}
