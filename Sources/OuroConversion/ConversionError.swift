/// Why a conversion could not be done. Descriptions are one line and name the file.
public enum ConversionError: Error, Equatable, CustomStringConvertible {
    /// The requested output type cannot hold model weights (e.g. a type the converter does not write).
    case unsupportedTargetType(String)
    /// The output path is the input, or inside the checkpoint folder where it would be read back.
    case outputIsInput(path: String)

    public var description: String {
        switch self {
        case let .unsupportedTargetType(type):
            return "cannot write tensors of type \(type); use f32, f16, bf16, q8_0 or q4_0"
        case let .outputIsInput(path):
            return "\(path): the output would overwrite an input file"
        }
    }
}
