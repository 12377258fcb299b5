import OuroIO
/// The parsed and fully validated header of a safetensors file.
///
/// Checks run cheapest first, in the order of huggingface/safetensors: framing (length, bounds,
/// UTF-8, JSON object), then each entry (dtype, shape, offsets, sizes), then that the tensors tile
/// the data section exactly: no hole, no overlap, no trailing bytes.
struct SafeTensorsHeader {
    /// huggingface/safetensors refuses larger headers; so do we (it also bounds the parse's memory).
    static let maxHeaderLength: UInt64 = 100_000_000

    let metadata: [String: String]
    /// Sorted by data offset.
    let tensors: [SafeTensorInfo]

    init(file bytes: UnsafeRawBufferPointer, path: String) throws {
        guard bytes.count >= 8 else { throw SafeTensorsError.fileTooSmall(path: path, size: bytes.count) }
        let declared = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        guard declared <= Self.maxHeaderLength else {
            throw SafeTensorsError.headerTooLarge(path: path, length: declared)
        }
        let headerLength = Int(declared)
        let (dataStart, overflow) = 8.addingReportingOverflow(headerLength)
        guard !overflow, dataStart <= bytes.count else {
            throw SafeTensorsError.headerPastEnd(path: path, length: declared, fileSize: bytes.count)
        }
        let headerBytes = UnsafeRawBufferPointer(rebasing: bytes[8..<dataStart])
        guard isValidUTF8(headerBytes) else { throw SafeTensorsError.headerNotUTF8(path: path) }

        let root: JSONValue
        do {
            root = try JSONParser.parse(headerBytes)
        } catch let failure as JSONParser.Failure {
            if case let .duplicateKey(key, depth) = failure, depth == 0 {
                throw SafeTensorsError.duplicateTensor(path: path, tensor: key)
            }
            throw SafeTensorsError.headerNotJSON(path: path, reason: failure.reason)
        }
        guard case let .object(entries) = root else {
            throw SafeTensorsError.headerNotObject(path: path, found: root.kindName)
        }

        let dataSize = bytes.count - dataStart
        var metadata: [String: String] = [:]
        var found: [(info: SafeTensorInfo, begin: Int, end: Int)] = []
        found.reserveCapacity(entries.count)   // bounded by the header's size, already checked
        for (name, value) in entries {
            if name == "__metadata__" {
                metadata = try Self.parseMetadata(value, path: path)
            } else {
                found.append(try Self.parseEntry(name, value, path: path, dataStart: dataStart, dataSize: dataSize))
            }
        }

        // Tie-break by end and name so that empty tensors sort deterministically.
        found.sort { ($0.begin, $0.end, $0.info.name) < ($1.begin, $1.end, $1.info.name) }
        var covered = 0
        for (index, entry) in found.enumerated() {
            if entry.begin < covered {
                throw SafeTensorsError.tensorsOverlap(path: path, tensor: entry.info.name, other: found[index - 1].info.name)
            }
            if entry.begin > covered {
                throw SafeTensorsError.dataGap(path: path, start: covered, end: entry.begin)
            }
            covered = entry.end
        }
        if covered != dataSize {
            throw SafeTensorsError.trailingBytes(path: path, count: dataSize - covered)
        }
        self.metadata = metadata
        self.tensors = found.map(\.info)
    }

    private static func parseMetadata(_ value: JSONValue, path: String) throws -> [String: String] {
        guard case let .object(members) = value else {
            throw SafeTensorsError.badMetadata(path: path, reason: "is \(value.kindName)")
        }
        var metadata: [String: String] = [:]
        for (key, item) in members {
            guard case let .string(text) = item else {
                throw SafeTensorsError.badMetadata(path: path, reason: "value of \(quotedForMessage(key)) is \(item.kindName)")
            }
            metadata[key] = text
        }
        return metadata
    }

    private static func parseEntry(_ name: String, _ value: JSONValue, path: String,
                                   dataStart: Int, dataSize: Int) throws -> (info: SafeTensorInfo, begin: Int, end: Int) {
        guard case .object = value else {
            throw SafeTensorsError.badTensorEntry(path: path, tensor: name, reason: "entry is \(value.kindName), not an object")
        }
        guard case let .string(dtypeName)? = value["dtype"] else {
            throw SafeTensorsError.badTensorEntry(path: path, tensor: name, reason: "'dtype' is missing or not a string")
        }
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
            throw SafeTensorsError.unsupportedDType(path: path, tensor: name, dtype: dtypeName)
        }

        guard case let .array(dimensions)? = value["shape"] else {
            let reason = value["shape"].map { "is \($0.kindName)" } ?? "is missing"
            throw SafeTensorsError.badShape(path: path, tensor: name, reason: reason)
        }
        var shape: [Int] = []
        shape.reserveCapacity(dimensions.count)
        for (axis, dimension) in dimensions.enumerated() {
            let (extent, problem) = dimension.nonNegativeInt()
            guard let extent else {
                throw SafeTensorsError.badShape(path: path, tensor: name, reason: "dimension \(axis) \(problem)")
            }
            shape.append(extent)
        }

        guard case let .array(offsets)? = value["data_offsets"] else {
            let reason = value["data_offsets"].map { "is \($0.kindName)" } ?? "is missing"
            throw SafeTensorsError.badDataOffsets(path: path, tensor: name, reason: reason + "; expected [begin, end]")
        }
        guard offsets.count == 2 else {
            throw SafeTensorsError.badDataOffsets(path: path, tensor: name, reason: "has \(offsets.count) elements; expected [begin, end]")
        }
        let (beginValue, beginProblem) = offsets[0].nonNegativeInt()
        let (endValue, endProblem) = offsets[1].nonNegativeInt()
        guard let begin = beginValue else {
            throw SafeTensorsError.badDataOffsets(path: path, tensor: name, reason: "begin \(beginProblem)")
        }
        guard let end = endValue else {
            throw SafeTensorsError.badDataOffsets(path: path, tensor: name, reason: "end \(endProblem)")
        }
        guard begin <= end else {
            throw SafeTensorsError.badDataOffsets(path: path, tensor: name, reason: "begin \(begin) is after end \(end)")
        }

        var count = 1
        for extent in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: extent)
            guard !overflow else { throw SafeTensorsError.sizeOverflow(path: path, tensor: name, shape: shape) }
            count = product
        }
        let (byteCount, overflow) = count.multipliedReportingOverflow(by: dtype.size)
        guard !overflow else { throw SafeTensorsError.sizeOverflow(path: path, tensor: name, shape: shape) }
        guard end - begin == byteCount else {
            throw SafeTensorsError.sizeMismatch(path: path, tensor: name, expectedBytes: byteCount, actualBytes: end - begin)
        }
        guard end <= dataSize else {
            throw SafeTensorsError.tensorPastEnd(path: path, tensor: name, end: end, dataSize: dataSize)
        }
        // end <= dataSize and dataStart + dataSize == file size, so these cannot overflow.
        let info = SafeTensorInfo(name: name, dtype: dtype, shape: shape, byteRange: (dataStart + begin)..<(dataStart + end))
        return (info, begin, end)
    }
}
