import OuroIO

/// Everything that can go wrong in OuroModel. Each `description` is one line naming the file (or the
/// call) and the problem.
public enum ModelError: Error, Equatable, CustomStringConvertible {
    /// config.json is missing, unreadable or not JSON.
    case unreadableConfig(path: String, reason: String)
    /// A configuration value (JSON key or GGUF metadata key) is missing, malformed or out of range.
    case invalidConfig(path: String, key: String, problem: String)
    /// The model file has no tensor with this name.
    case missingTensor(path: String, name: String)
    /// The model file has a tensor the configuration does not account for.
    case unexpectedTensor(path: String, name: String)
    /// A tensor's shape (outermost first) is not what the configuration implies.
    case shapeMismatch(path: String, name: String, expected: [Int], actual: [Int])
    /// A tensor's element type cannot be used for this tensor.
    case unsupportedType(path: String, name: String, type: String, allowed: String)
    /// A token id outside the vocabulary.
    case tokenOutOfRange(token: Int, vocab: Int)
    /// A request the runner cannot serve (empty prompt, step out of range, too many positions...).
    case invalidRequest(String)

    /// One line whatever the file held (see `singleLine`).
    public var description: String { singleLine(text) }

    private var text: String {
        switch self {
        case let .unreadableConfig(path, reason):
            return "\(path): cannot read configuration: \(reason)"
        case let .invalidConfig(path, key, problem):
            return "\(path): '\(key)' \(problem)"
        case let .missingTensor(path, name):
            return "\(path): tensor '\(name)' is missing"
        case let .unexpectedTensor(path, name):
            return "\(path): unexpected tensor '\(name)' (not part of an Ouro model with this configuration)"
        case let .shapeMismatch(path, name, expected, actual):
            return "\(path): tensor '\(name)' has shape \(actual); expected \(expected)"
        case let .unsupportedType(path, name, type, allowed):
            return "\(path): tensor '\(name)' has type \(type); expected \(allowed)"
        case let .tokenOutOfRange(token, vocab):
            return "token id \(token) is outside the vocabulary (0..<\(vocab))"
        case let .invalidRequest(message):
            return message
        }
    }
}
