import OuroIO
import Quantization

/// A GGUF file (v3; v2 is read too), memory-mapped and fully validated on open: afterwards every
/// tensor's bytes are known to lie inside the file, aligned, without overlap.
///
/// Layout, all little-endian: "GGUF", u32 version, u64 tensor count, u64 metadata count,
/// metadata (string key, u32 value type, value), tensor infos (string name, u32 n_dims,
/// u64 dims innermost first, u32 ggml type, u64 offset), padding to `alignment`, data section.
public final class GGUFFile: @unchecked Sendable {
    public let path: String
    public let version: UInt32
    public let alignment: Int
    /// In file order.
    public let metadata: [(key: String, value: GGUFValue)]
    /// In file order.
    public let tensors: [GGUFTensorInfo]
    /// Absolute offset of the data section in the file.
    public let dataOffset: Int
    public var fileSize: Int { file.count }

    private let file: MappedFile
    private let keyIndex: [String: Int]
    private let tensorIndex: [String: Int]

    public convenience init(path: String) throws {
        try self.init(file: MappedFile(path: path))
    }

    public init(file: MappedFile) throws {
        self.file = file
        path = file.path
        var p = GGUFParser(path: path, bytes: file.bytes)

        // Magic and version.
        let magic = try p.bytes(4, "the magic")
        guard Array(magic) == GGUFFormat.magic else { throw GGUFError.badMagic(path: path, found: Array(magic)) }
        version = try p.read(UInt32.self, "the version")
        guard GGUFFormat.readableVersions.contains(version) else { throw GGUFError.unsupportedVersion(path: path, version: version) }

        // Counts, bounded by what the rest of the file could hold.
        let tensorCount = try p.read(UInt64.self, "the tensor count")
        let keyValueCount = try p.read(UInt64.self, "the metadata count")
        let (tensorBytes, o1) = tensorCount.multipliedReportingOverflow(by: UInt64(GGUFFormat.minimumTensorInfoSize))
        guard !o1, tensorBytes <= UInt64(p.remaining) else {
            throw GGUFError.countTooLarge(path: path, what: "tensor count", count: tensorCount, fileSize: file.count)
        }
        let (keyValueBytes, o2) = keyValueCount.multipliedReportingOverflow(by: UInt64(GGUFFormat.minimumKeyValueSize))
        guard !o2, keyValueBytes <= UInt64(p.remaining) - tensorBytes else {
            throw GGUFError.countTooLarge(path: path, what: "metadata count", count: keyValueCount, fileSize: file.count)
        }

        // Metadata.
        var metadata: [(key: String, value: GGUFValue)] = []
        var keyIndex: [String: Int] = [:]
        metadata.reserveCapacity(Int(keyValueCount))
        for i in 0..<Int(keyValueCount) {
            let key = try p.string("metadata key \(i)", cap: GGUFFormat.maxKeyBytes)
            guard !key.isEmpty else { throw GGUFError.emptyName(path: path, what: "metadata key \(i)") }
            guard keyIndex[key] == nil else { throw GGUFError.duplicateKey(path: path, key: key) }
            let value = try p.value(try p.valueType(key: key), key: key)
            keyIndex[key] = metadata.count
            metadata.append((key, value))
        }
        self.metadata = metadata
        self.keyIndex = keyIndex

        // Alignment of the data section.
        if let index = keyIndex[GGUFFormat.alignmentKey] {
            let value = metadata[index].value
            guard case let .uint32(a) = value, a > 0, a & (a - 1) == 0 else {
                throw GGUFError.badAlignment(path: path, found: "\(value)")
            }
            alignment = Int(a)
        } else {
            alignment = GGUFFormat.defaultAlignment
        }

        // Tensor infos: names, shapes, types; offsets are checked once the data section is known.
        var infos: [(info: GGUFTensorInfo, rawOffset: UInt64)] = []
        var tensorIndex: [String: Int] = [:]
        infos.reserveCapacity(Int(tensorCount))
        for i in 0..<Int(tensorCount) {
            let name = try p.string("tensor name \(i)", cap: 1 << 16)
            guard !name.isEmpty else { throw GGUFError.emptyName(path: path, what: "tensor name \(i)") }
            guard name.utf8.count <= GGUFFormat.maxTensorNameBytes else {
                throw GGUFError.tensorNameTooLong(path: path, name: name, bytes: name.utf8.count)
            }
            guard tensorIndex[name] == nil else { throw GGUFError.duplicateTensor(path: path, tensor: name) }
            let dimensionCount = try p.read(UInt32.self, "the dimension count of '\(name)'")
            guard dimensionCount <= GGUFFormat.maxDimensions else {
                throw GGUFError.tooManyDimensions(path: path, tensor: name, count: dimensionCount)
            }
            var rawDimensions: [UInt64] = []
            for d in 0..<Int(dimensionCount) { rawDimensions.append(try p.read(UInt64.self, "dimension \(d) of '\(name)'")) }
            let rawType = try p.read(UInt32.self, "the type of '\(name)'")
            let rawOffset = try p.read(UInt64.self, "the offset of '\(name)'")
            guard rawDimensions.allSatisfy({ $0 > 0 && $0 <= UInt64(Int.max) }) else {
                throw GGUFError.badDimensions(path: path, tensor: name, dimensions: rawDimensions)
            }
            let dimensions = rawDimensions.map { Int($0) }
            guard let type = GGMLType(id: rawType) else { throw GGUFError.unknownTensorType(path: path, tensor: name, rawValue: rawType) }
            let rowLength = dimensions.first ?? 1
            guard rowLength % type.blockSize == 0 else {
                throw GGUFError.notWholeBlocks(path: path, tensor: name, type: type, rowLength: rowLength)
            }
            guard let byteCount = GGUFTensorInfo.byteCount(dimensions: dimensions, type: type) else {
                throw GGUFError.badDimensions(path: path, tensor: name, dimensions: rawDimensions)
            }
            guard rawOffset % UInt64(alignment) == 0 else {
                throw GGUFError.misalignedOffset(path: path, tensor: name, offset: rawOffset, alignment: alignment)
            }
            tensorIndex[name] = infos.count
            infos.append((GGUFTensorInfo(name: name, dimensions: dimensions, type: type, offset: 0, byteCount: byteCount), rawOffset))
        }

        // Data section: starts at the aligned end of the tensor infos; every tensor inside the file.
        dataOffset = alignedUp(p.offset, to: alignment)
        let dataSize = max(0, file.count - dataOffset)
        if !infos.isEmpty && dataOffset > file.count {
            throw GGUFError.truncated(path: path, what: "the padding before the data section", offset: p.offset, needed: dataOffset - p.offset)
        }
        var tensors: [GGUFTensorInfo] = []
        tensors.reserveCapacity(infos.count)
        for (info, rawOffset) in infos {
            guard rawOffset <= UInt64(dataSize), UInt64(info.byteCount) <= UInt64(dataSize) - rawOffset else {
                throw GGUFError.dataOutOfBounds(path: path, tensor: info.name, offset: rawOffset, byteCount: info.byteCount, dataSize: dataSize)
            }
            tensors.append(GGUFTensorInfo(name: info.name, dimensions: info.dimensions, type: info.type,
                                          offset: Int(rawOffset), byteCount: info.byteCount))
        }
        // No overlap: in offset order, each tensor ends before the next begins.
        let byOffset = tensors.sorted { $0.offset < $1.offset }
        for (a, b) in zip(byOffset, byOffset.dropFirst()) where a.offset + a.byteCount > b.offset {
            throw GGUFError.overlappingTensors(path: path, first: a.name, second: b.name)
        }
        self.tensors = tensors
        self.tensorIndex = tensorIndex
    }

    public func value(_ key: String) -> GGUFValue? {
        keyIndex[key].map { metadata[$0].value }
    }

    public func tensor(_ name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// The tensor's bytes, straight from the map; valid while this object lives.
    /// `tensor` must come from this file (its range was validated on open).
    public func data(_ tensor: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        let start = dataOffset + tensor.offset
        precondition(start >= dataOffset && start + tensor.byteCount <= file.count, "tensor '\(tensor.name)' is not from \(path)")
        return UnsafeRawBufferPointer(rebasing: file.bytes[start..<start + tensor.byteCount])
    }

    /// The whole mapping, e.g. for `MappedFile.release` of pages already consumed.
    public var mappedFile: MappedFile { file }
}
