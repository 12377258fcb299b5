/// Misuse of the codecs with sizes that come from outside (files, command lines).
/// `description` is one line naming the problem; callers prefix the file they were reading.
public enum QuantizationError: Error, Equatable, CustomStringConvertible {
    /// `count` elements are not a whole number of `type.blockSize` blocks (or negative).
    case notWholeBlocks(type: GGMLType, count: Int)
    /// The byte size of `count` elements of `type` does not fit in an `Int`.
    case sizeOverflow(type: GGMLType, count: Int)
    /// A byte buffer holds `actual` bytes where `count` elements of `type` need `expected`.
    case byteCountMismatch(type: GGMLType, count: Int, expected: Int, actual: Int)

    public var description: String {
        switch self {
        case let .notWholeBlocks(type, count):
            return "\(count) elements are not a whole number of \(type.name) blocks of \(type.blockSize)"
        case let .sizeOverflow(type, count):
            return "\(count) elements of \(type.name) do not fit in memory"
        case let .byteCountMismatch(type, count, expected, actual):
            return "\(count) elements of \(type.name) need \(expected) bytes; got \(actual)"
        }
    }
}
