import OuroIO

/// Everything that can go wrong while reading a reference bundle or validating a model against it.
/// `description` is one line that names the file and the problem.
/// (The name `ValidationError` is left to ArgumentParser.)
public enum ValidationFailure: Error, Equatable, CustomStringConvertible {
    /// The zstd stream is cut short: input ended inside a frame.
    case truncatedCompressedData(path: String)
    /// libzstd rejected the input (bad magic, corrupt block, checksum mismatch...).
    case corruptCompressedData(path: String, reason: String)
    /// The decompressed size (declared or reached) exceeds the cap.
    case decompressedTooLarge(path: String, size: UInt64, limit: UInt64)
    /// `__metadata__` names our format with a version this reader does not know.
    case unsupportedFormatVersion(path: String, version: String)
    /// No tensor named `p<N>.input_ids` exists.
    case noPrompts(path: String)
    /// A tensor the format requires is absent.
    case missingTensor(path: String, name: String)
    /// A tensor has the wrong rank or its axes disagree with another tensor or the model config.
    case shapeMismatch(path: String, name: String, shape: [Int], expected: String)
    /// A tensor has a dtype the format does not allow.
    case wrongDType(path: String, name: String, dtype: String, expected: String)
    /// An integer tensor holds a value outside its range (token id >= vocab, exit step >= steps...).
    case valueOutOfRange(path: String, name: String, value: Int64, range: String)
    /// A tensor name that looks like ours but cannot be parsed (`threshold_abc`, `exit_at_step_x`).
    case malformedTensorName(path: String, name: String)
    /// The model produced outputs whose shape differs from the reference.
    case modelOutputMismatch(path: String, what: String)

    /// One line whatever the bundle held (see `singleLine`).
    public var description: String { singleLine(text) }

    private var text: String {
        switch self {
        case let .truncatedCompressedData(path):
            return "\(path): zstd data is truncated (input ends inside a frame)"
        case let .corruptCompressedData(path, reason):
            return "\(path): zstd data is corrupt: \(reason)"
        case let .decompressedTooLarge(path, size, limit):
            return "\(path): decompressed size \(size) bytes exceeds the limit of \(limit) bytes"
        case let .unsupportedFormatVersion(path, version):
            return "\(path): ouro-reference format_version '\(version)' is not supported; expected 1"
        case let .noPrompts(path):
            return "\(path): no prompts: expected tensors named p0.input_ids, p1.input_ids, ..."
        case let .missingTensor(path, name):
            return "\(path): missing tensor '\(name)'"
        case let .shapeMismatch(path, name, shape, expected):
            return "\(path): tensor '\(name)' has shape \(shape); expected \(expected)"
        case let .wrongDType(path, name, dtype, expected):
            return "\(path): tensor '\(name)' has dtype \(dtype); expected \(expected)"
        case let .valueOutOfRange(path, name, value, range):
            return "\(path): tensor '\(name)' holds \(value); expected a value in \(range)"
        case let .malformedTensorName(path, name):
            return "\(path): cannot parse tensor name '\(name)'"
        case let .modelOutputMismatch(path, what):
            return "\(path): model output does not fit the reference: \(what)"
        }
    }
}
