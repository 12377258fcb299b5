/// The element types of the safetensors format that this toolkit reads.
///
/// The other dtypes of the format (F8_E4M3, F8_E5M2, U16, U32, U64, …) are rejected by name as
/// unsupported: no Ouro checkpoint uses them, and leaving them out keeps this enum's case list
/// the one other modules switch over.
public enum SafeTensorsDType: String, Sendable, CaseIterable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8", u8 = "U8", bool = "BOOL"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .f64, .i64: return 8
        case .f32, .i32: return 4
        case .f16, .bf16, .i16: return 2
        case .i8, .u8, .bool: return 1
        }
    }
}
