import OuroIO
import Quantization

/// Everything that can be wrong with a GGUF file being read, or with a file being written.
/// Every case names the file; `description` is one line. (Failures of the OS file calls themselves
/// surface as OuroIO's `FileIOError`, which names the file too.)
public enum GGUFError: Error, Equatable, CustomStringConvertible {
    /// The file ended while reading `what`, which needed `needed` bytes at byte `offset`.
    case truncated(path: String, what: String, offset: Int, needed: Int)
    /// The first four bytes are not "GGUF".
    case badMagic(path: String, found: [UInt8])
    /// The version is not 2 or 3 (a byte-swapped 3 means a big-endian file).
    case unsupportedVersion(path: String, version: UInt32)
    /// A tensor or metadata count that the rest of the file cannot possibly hold.
    case countTooLarge(path: String, what: String, count: UInt64, fileSize: Int)
    /// A string (key, value or tensor name) longer than the cap or than the remaining file.
    case stringTooLong(path: String, what: String, length: UInt64)
    /// A string that is not valid UTF-8.
    case invalidUTF8(path: String, what: String)
    /// An empty metadata key or tensor name.
    case emptyName(path: String, what: String)
    /// A value type tag outside the specification's 0...12.
    case unknownValueType(path: String, key: String, rawValue: UInt32)
    /// Arrays of arrays nested deeper than the reader allows.
    case nestingTooDeep(path: String, key: String)
    /// A bool stored as a byte other than 0 or 1.
    case invalidBool(path: String, key: String, byte: UInt8)
    /// The same metadata key twice.
    case duplicateKey(path: String, key: String)
    /// An array whose elements are not all of its declared element type (writer).
    case arrayTypeMismatch(path: String, key: String, declared: GGUFValueType)
    /// `general.alignment` that is not a u32 power of two (the found value, quoted).
    case badAlignment(path: String, found: String)
    /// A tensor name of `bytes` UTF-8 bytes; ggml allows at most 63.
    case tensorNameTooLong(path: String, name: String, bytes: Int)
    /// More than 4 dimensions.
    case tooManyDimensions(path: String, tensor: String, count: UInt32)
    /// A zero (or too large) dimension, or an element count that overflows.
    case badDimensions(path: String, tensor: String, dimensions: [UInt64])
    /// A ggml type id this toolkit does not know.
    case unknownTensorType(path: String, tensor: String, rawValue: UInt32)
    /// A row length that is not a whole number of blocks of the tensor's type.
    case notWholeBlocks(path: String, tensor: String, type: GGMLType, rowLength: Int)
    /// A tensor offset that is not a multiple of the alignment.
    case misalignedOffset(path: String, tensor: String, offset: UInt64, alignment: Int)
    /// Tensor bytes that reach past the end of the file.
    case dataOutOfBounds(path: String, tensor: String, offset: UInt64, byteCount: Int, dataSize: Int)
    /// Two tensors whose byte ranges overlap.
    case overlappingTensors(path: String, first: String, second: String)
    /// The same tensor name twice.
    case duplicateTensor(path: String, tensor: String)
    /// Writer: a call made in the wrong phase (metadata -> tensor infos -> data -> finished).
    case wrongWriterState(path: String, call: String, state: String)
    /// Writer: more bytes given for a tensor than it holds, or data after the last tensor.
    case tooMuchTensorData(path: String, tensor: String, expected: Int, received: Int)
    /// Writer: `finish()` before every tensor's bytes were written.
    case incompleteTensorData(path: String, tensor: String, expected: Int, received: Int)
    /// The metadata or tensor table differs from what was written (`integrity.header_xxh64`).
    case headerChecksumMismatch(path: String)
    /// An `integrity.*` key has the wrong type or size.
    case malformedIntegrity(path: String, key: String)
    /// Verification was asked for, but the file carries no tensor checksums.
    case noChecksums(path: String)

    /// One line whatever the file held (see `singleLine`).
    public var description: String { singleLine(text) }

    private var text: String {
        switch self {
        case let .headerChecksumMismatch(path):
            return "\(path): header checksum mismatch: the metadata or tensor table was altered or corrupted; run 'ouro verify \(path)'"
        case let .malformedIntegrity(path, key):
            return "\(path): integrity key '\(key)' is malformed; run 'ouro verify \(path)'"
        case let .noChecksums(path):
            return "\(path): the file carries no tensor checksums (not written by ouro convert); nothing to verify against"
        case let .truncated(path, what, offset, needed):
            return "\(path): file ends inside \(what) (needed \(needed) bytes at offset \(offset))"
        case let .badMagic(path, found):
            let text = found.map { (0x20...0x7e).contains($0) ? String(UnicodeScalar($0)) : "\\x" + String($0, radix: 16) }.joined()
            return "\(path): not a GGUF file (starts with \"\(text)\", expected \"GGUF\")"
        case let .unsupportedVersion(path, version):
            let hint = version == GGUFFormat.version.byteSwapped ? " (a big-endian file)" : ""
            return "\(path): GGUF version \(version)\(hint) is not supported; expected 3 (or 2)"
        case let .countTooLarge(path, what, count, fileSize):
            return "\(path): \(what) \(count) cannot fit in a file of \(fileSize) bytes"
        case let .stringTooLong(path, what, length):
            return "\(path): \(what) has length \(length), longer than the limit or the rest of the file"
        case let .invalidUTF8(path, what):
            return "\(path): \(what) is not valid UTF-8"
        case let .emptyName(path, what):
            return "\(path): \(what) is empty"
        case let .unknownValueType(path, key, raw):
            return "\(path): metadata '\(key)' has unknown value type \(raw); expected 0...12"
        case let .nestingTooDeep(path, key):
            return "\(path): metadata '\(key)' nests arrays deeper than \(GGUFFormat.maxArrayNesting) levels"
        case let .invalidBool(path, key, byte):
            return "\(path): metadata '\(key)' is a bool stored as \(byte); expected 0 or 1"
        case let .duplicateKey(path, key):
            return "\(path): metadata key '\(key)' appears twice"
        case let .arrayTypeMismatch(path, key, declared):
            return "\(path): metadata '\(key)' is an array of \(declared) holding elements of another type"
        case let .badAlignment(path, found):
            return "\(path): general.alignment is \(found); expected a u32 power of two"
        case let .tensorNameTooLong(path, name, bytes):
            return "\(path): tensor name '\(name.prefix(80))' is \(bytes) bytes; ggml allows at most \(GGUFFormat.maxTensorNameBytes)"
        case let .tooManyDimensions(path, tensor, count):
            return "\(path): tensor '\(tensor)' has \(count) dimensions; ggml allows at most \(GGUFFormat.maxDimensions)"
        case let .badDimensions(path, tensor, dims):
            return "\(path): tensor '\(tensor)' has dimensions \(dims); each must be positive and the element count must fit"
        case let .unknownTensorType(path, tensor, raw):
            return "\(path): tensor '\(tensor)' has unsupported ggml type \(raw); supported: \(GGMLType.allCases.map { "\($0.name) (\($0.rawValue))" }.joined(separator: ", "))"
        case let .notWholeBlocks(path, tensor, type, rowLength):
            return "\(path): tensor '\(tensor)' rows of \(rowLength) elements are not whole \(type.name) blocks of \(type.blockSize)"
        case let .misalignedOffset(path, tensor, offset, alignment):
            return "\(path): tensor '\(tensor)' offset \(offset) is not a multiple of the alignment \(alignment)"
        case let .dataOutOfBounds(path, tensor, offset, byteCount, dataSize):
            return "\(path): tensor '\(tensor)' bytes \(offset)..<\(offset) + \(byteCount) lie outside the data section of \(dataSize) bytes"
        case let .overlappingTensors(path, first, second):
            return "\(path): tensors '\(first)' and '\(second)' overlap"
        case let .duplicateTensor(path, tensor):
            return "\(path): tensor '\(tensor)' appears twice"
        case let .wrongWriterState(path, call, state):
            return "\(path): \(call) is not allowed while \(state)"
        case let .tooMuchTensorData(path, tensor, expected, received):
            return "\(path): tensor '\(tensor)' holds \(expected) bytes; received \(received)"
        case let .incompleteTensorData(path, tensor, expected, received):
            return "\(path): tensor '\(tensor)' got \(received) of its \(expected) bytes; nothing was written there"
        }
    }
}
