import OuroIO

/// A safetensors file: an 8-byte little-endian header length, a JSON header naming each tensor's
/// dtype, shape and byte range, then the tensors' bytes. Every rule of the format is checked when
/// the file is opened (see `SafeTensorsHeader`); afterwards tensor data is read straight from the
/// memory map (or the owned buffer), never copied unless converted.
public final class SafeTensorsFile: @unchecked Sendable {
    public let path: String
    /// The header's `__metadata__` (empty when absent).
    public let metadata: [String: String]
    /// In data-offset order.
    public let tensors: [SafeTensorInfo]

    private let storage: SafeTensorsStorage
    private let indexByName: [String: Int]

    /// Maps the file read-only and checks the whole format.
    public convenience init(path: String) throws {
        try self.init(path: path, storage: SafeTensorsStorage(mapped: try MappedFile(path: path)))
    }

    /// The same over a file already mapped (for example a bundle decompressed into a temporary
    /// file); `path` names the data in errors.
    public convenience init(path: String, mapped: MappedFile) throws {
        try self.init(path: path, storage: SafeTensorsStorage(mapped: mapped))
    }

    /// The same checks over bytes held in memory (for example a decompressed reference bundle);
    /// `path` only names the data in errors. The bytes are copied once.
    public convenience init(path: String, bytes: [UInt8]) throws {
        try self.init(path: path, storage: SafeTensorsStorage(copying: bytes))
    }

    private init(path: String, storage: SafeTensorsStorage) throws {
        let header = try SafeTensorsHeader(file: storage.bytes, path: path)
        self.path = path
        self.storage = storage
        self.metadata = header.metadata
        self.tensors = header.tensors
        var index: [String: Int] = [:]
        index.reserveCapacity(header.tensors.count)
        for (i, info) in header.tensors.enumerated() { index[info.name] = i }
        self.indexByName = index
    }

    public func info(_ name: String) -> SafeTensorInfo? {
        indexByName[name].map { tensors[$0] }
    }

    /// The tensor's bytes, without copying; valid while this object lives. `info` must come from
    /// this file.
    public func data(_ info: SafeTensorInfo) -> UnsafeRawBufferPointer {
        precondition(info.byteRange.upperBound <= storage.bytes.count, "SafeTensorInfo from another file")
        return UnsafeRawBufferPointer(rebasing: storage.bytes[info.byteRange])
    }

    /// Lets the kernel drop the pages of this tensor after a streaming pass (no effect on in-memory data).
    public func release(_ info: SafeTensorInfo) {
        storage.mapped?.release(info.byteRange)
    }

    /// Drops the pages behind `bytes`, a view this file returned (from `data(_:)`, or part of one),
    /// after a streaming pass. Views of other memory are ignored.
    public func release(_ bytes: UnsafeRawBufferPointer) {
        guard let mapped = storage.mapped, let base = bytes.baseAddress, let fileBase = storage.bytes.baseAddress,
              base >= fileBase, base + bytes.count <= fileBase + storage.bytes.count else { return }
        let start = base - fileBase
        mapped.release(start..<start + bytes.count)
    }

    /// The tensor's elements as Float: F32 as stored, F16 and BF16 widened exactly.
    public func floats(_ name: String) throws -> [Float] {
        let info = try lookUp(name)
        let raw = data(info)
        let count = info.elementCount
        switch info.dtype {
        case .f32:
            return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                if count > 0 { UnsafeMutableRawPointer(buffer.baseAddress!).copyMemory(from: raw.baseAddress!, byteCount: count * 4) }
                initialized = count
            }
        case .f16:
            return (0..<count).map { i in
                HalfFloatConversion.f16ToFloat(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
            }
        case .bf16:
            return (0..<count).map { i in
                HalfFloatConversion.bf16ToFloat(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
            }
        default:
            throw SafeTensorsError.wrongDType(path: path, tensor: name, dtype: info.dtype, expected: "F32, F16 or BF16")
        }
    }

    /// The tensor's elements as Int64: I64 as stored, I32 widened.
    public func int64s(_ name: String) throws -> [Int64] {
        let info = try lookUp(name)
        let raw = data(info)
        switch info.dtype {
        case .i64:
            return (0..<info.elementCount).map { Int64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: Int64.self)) }
        case .i32:
            return (0..<info.elementCount).map { Int64(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: Int32.self))) }
        default:
            throw SafeTensorsError.wrongDType(path: path, tensor: name, dtype: info.dtype, expected: "I64 or I32")
        }
    }

    private func lookUp(_ name: String) throws -> SafeTensorInfo {
        guard let info = info(name) else { throw SafeTensorsError.tensorNotFound(path: path, tensor: name) }
        return info
    }
}
