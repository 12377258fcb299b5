import OuroIO
/// Why a safetensors file or checkpoint folder was rejected. Every case names the file (its path as
/// given) and, where there is one, the tensor; `description` is one line. Failures of the operating
/// system's file calls (cannot open, cannot map) arrive as `OuroIO.FileIOError` instead.
public enum SafeTensorsError: Error, Equatable, CustomStringConvertible {
    // MARK: The file's framing

    /// The file is shorter than the 8-byte header length.
    case fileTooSmall(path: String, size: Int)
    /// The header length exceeds 100,000,000 bytes (the limit of huggingface/safetensors).
    case headerTooLarge(path: String, length: UInt64)
    /// 8 + the header length runs past the end of the file.
    case headerPastEnd(path: String, length: UInt64, fileSize: Int)
    /// The header bytes are not valid UTF-8.
    case headerNotUTF8(path: String)
    /// The header is not valid JSON (this includes an empty header and a duplicate key inside an entry).
    case headerNotJSON(path: String, reason: String)
    /// The header is valid JSON but not an object.
    case headerNotObject(path: String, found: String)

    // MARK: Header entries

    /// Two header entries have the same name.
    case duplicateTensor(path: String, tensor: String)
    /// `__metadata__` is not an object whose values are all strings.
    case badMetadata(path: String, reason: String)
    /// An entry is not an object, or its `dtype` is missing or not a string.
    case badTensorEntry(path: String, tensor: String, reason: String)
    /// The `dtype` string is not one this toolkit reads.
    case unsupportedDType(path: String, tensor: String, dtype: String)
    /// `shape` is missing or not an array of non-negative integers.
    case badShape(path: String, tensor: String, reason: String)
    /// `data_offsets` is missing, not two non-negative integers, or begin > end.
    case badDataOffsets(path: String, tensor: String, reason: String)
    /// The element count or byte size implied by the shape does not fit in an Int.
    case sizeOverflow(path: String, tensor: String, shape: [Int])
    /// `end - begin` differs from element count × dtype size.
    case sizeMismatch(path: String, tensor: String, expectedBytes: Int, actualBytes: Int)

    // MARK: How the tensors cover the data section

    /// A tensor's data ends past the end of the data section.
    case tensorPastEnd(path: String, tensor: String, end: Int, dataSize: Int)
    /// Two tensors share bytes.
    case tensorsOverlap(path: String, tensor: String, other: String)
    /// Bytes `start..<end` of the data section belong to no tensor.
    case dataGap(path: String, start: Int, end: Int)
    /// Bytes after the last tensor's data.
    case trailingBytes(path: String, count: Int)

    // MARK: Reading tensors

    /// No tensor of that name in the file.
    case tensorNotFound(path: String, tensor: String)
    /// The tensor's dtype cannot be read as requested (`expected` lists the accepted dtypes).
    case wrongDType(path: String, tensor: String, dtype: SafeTensorsDType, expected: String)

    // MARK: Checkpoint folders

    /// The checkpoint path does not exist or is not a directory.
    case notAFolder(path: String)
    /// The folder has neither model.safetensors.index.json nor model.safetensors.
    case noWeights(folder: String)
    /// model.safetensors.index.json is not valid UTF-8 JSON.
    case indexNotJSON(path: String, reason: String)
    /// model.safetensors.index.json is JSON but its `weight_map` is missing or malformed.
    case badIndex(path: String, reason: String)
    /// A shard file named by the index does not exist (`tensor` is one tensor mapped to it).
    case missingShard(path: String, tensor: String)
    /// The index maps a tensor to a shard that does not contain it.
    case tensorMissingFromShard(path: String, tensor: String)
    /// The same tensor is stored in two shard files.
    case tensorInTwoShards(tensor: String, first: String, second: String)

    public var description: String {
        let q = quotedForMessage
        switch self {
        case let .fileTooSmall(path, size):
            return "\(path): file is \(size) bytes; a safetensors file starts with an 8-byte header length"
        case let .headerTooLarge(path, length):
            return "\(path): header length \(length) exceeds the 100000000-byte limit"
        case let .headerPastEnd(path, length, fileSize):
            return "\(path): header length \(length) runs past the end of the \(fileSize)-byte file"
        case let .headerNotUTF8(path):
            return "\(path): header is not valid UTF-8"
        case let .headerNotJSON(path, reason):
            return "\(path): header is not valid JSON: \(reason)"
        case let .headerNotObject(path, found):
            return "\(path): header is \(found); expected a JSON object"
        case let .duplicateTensor(path, tensor):
            return "\(path): tensor \(q(tensor)) appears twice in the header"
        case let .badMetadata(path, reason):
            return "\(path): __metadata__ \(reason); expected an object of strings"
        case let .badTensorEntry(path, tensor, reason):
            return "\(path): tensor \(q(tensor)): \(reason)"
        case let .unsupportedDType(path, tensor, dtype):
            let known = SafeTensorsDType.allCases.map(\.rawValue).joined(separator: ", ")
            return "\(path): tensor \(q(tensor)) has dtype \(q(dtype)); expected one of \(known)"
        case let .badShape(path, tensor, reason):
            return "\(path): tensor \(q(tensor)): shape \(reason); expected an array of non-negative integers"
        case let .badDataOffsets(path, tensor, reason):
            return "\(path): tensor \(q(tensor)): data_offsets \(reason)"
        case let .sizeOverflow(path, tensor, shape):
            return "\(path): tensor \(q(tensor)): shape \(shape) is too large to address"
        case let .sizeMismatch(path, tensor, expected, actual):
            return "\(path): tensor \(q(tensor)): data_offsets span \(actual) bytes; its shape and dtype need \(expected)"
        case let .tensorPastEnd(path, tensor, end, dataSize):
            return "\(path): tensor \(q(tensor)) ends at data offset \(end), past the \(dataSize)-byte data section"
        case let .tensorsOverlap(path, tensor, other):
            return "\(path): tensor \(q(tensor)) overlaps tensor \(q(other))"
        case let .dataGap(path, start, end):
            return "\(path): data bytes \(start)..<\(end) belong to no tensor"
        case let .trailingBytes(path, count):
            return "\(path): trailing data: \(count) byte(s) after the last tensor"
        case let .tensorNotFound(path, tensor):
            return "\(path): no tensor named \(q(tensor))"
        case let .wrongDType(path, tensor, dtype, expected):
            return "\(path): tensor \(q(tensor)) has dtype \(dtype.rawValue); expected \(expected)"
        case let .notAFolder(path):
            return "\(path): not a checkpoint folder (missing or not a directory)"
        case let .noWeights(folder):
            return "\(folder): no model.safetensors.index.json or model.safetensors in this folder"
        case let .indexNotJSON(path, reason):
            return "\(path): not valid JSON: \(reason)"
        case let .badIndex(path, reason):
            return "\(path): \(reason)"
        case let .missingShard(path, tensor):
            return "\(path): shard file does not exist (the index maps tensor \(q(tensor)) to it)"
        case let .tensorMissingFromShard(path, tensor):
            return "\(path): the index maps tensor \(q(tensor)) to this shard, but it is not in it"
        case let .tensorInTwoShards(tensor, first, second):
            return "\(second): tensor \(q(tensor)) is also stored in \(first)"
        }
    }
}
