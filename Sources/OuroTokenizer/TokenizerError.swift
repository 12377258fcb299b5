import OuroIO

/// Why a tokenizer file, a chat template or a text could not be used. `description` is one line naming
/// the file (or template) and the problem.
public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    /// The file is not usable: unreadable, malformed JSON, a missing or mistyped field.
    case badFile(path: String, reason: String)
    /// The file uses a construct this module does not implement (named), rather than tokenizing differently.
    case unsupported(path: String, construct: String)

    public var description: String {
        switch self {
        case let .badFile(path, reason): return singleLine("\(path): \(reason)")
        case let .unsupported(path, construct): return singleLine("\(path): unsupported \(construct)")
        }
    }
}
