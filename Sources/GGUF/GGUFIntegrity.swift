import OuroIO

/// Checksums our writer stores in every file, so corruption is found instead of computed with.
///
/// - `integrity.algorithm` (string): `"xxh64"`.
/// - `integrity.header_xxh64` (u64): XXH64 of the GGUF encoding of every metadata entry except the
///   `integrity.*` ones (key, type, value, in file order), followed by every tensor info (name, n_dims,
///   dims, type, offset). Checking it costs microseconds, so readers do it on every open.
/// - `integrity.tensor_xxh64` (u64 array): XXH64 of each tensor's data bytes (padding excluded), in
///   tensor-info order. The writer reserves the array and fills it in after the data has streamed past.
enum GGUFIntegrity {
    static let algorithmKey = "integrity.algorithm"
    static let headerKey = "integrity.header_xxh64"
    static let tensorsKey = "integrity.tensor_xxh64"
    static let algorithm = "xxh64"
    static let keys = [algorithmKey, headerKey, tensorsKey]

    static func isIntegrityKey(_ key: String) -> Bool { key.hasPrefix("integrity.") }

    static func headerHash(metadata: [(key: String, value: GGUFValue)], tensors: [GGUFTensorInfo]) -> UInt64 {
        var e = GGUFEncoder()
        for (key, value) in metadata where !isIntegrityKey(key) {
            e.string(key)
            e.integer(value.type.rawValue)
            e.value(value)
        }
        for t in tensors { e.tensorInfo(t) }
        return XXH64.hash(e.data)
    }
}

extension GGUFFile {
    /// Whether the file carries our checksums (files from other writers may not).
    public var hasChecksums: Bool { value(GGUFIntegrity.tensorsKey) != nil }

    /// The cheap check run on every load: the metadata and tensor table are the ones written.
    /// Files without checksums pass (there is nothing to check against).
    public func checkHeaderIntegrity() throws {
        // All three keys or none: a damaged key name must not pass as "no checksums".
        let present = metadata.map(\.key).filter(GGUFIntegrity.isIntegrityKey)
        guard !present.isEmpty else { return }
        if let odd = present.first(where: { !GGUFIntegrity.keys.contains($0) }) ?? GGUFIntegrity.keys.first(where: { !present.contains($0) }) {
            throw GGUFError.malformedIntegrity(path: path, key: odd)
        }
        guard value(GGUFIntegrity.algorithmKey)?.string == GGUFIntegrity.algorithm,
              case let .uint64(expected)? = value(GGUFIntegrity.headerKey) else {
            throw GGUFError.malformedIntegrity(path: path, key: GGUFIntegrity.algorithmKey)
        }
        guard GGUFIntegrity.headerHash(metadata: metadata, tensors: tensors) == expected else {
            throw GGUFError.headerChecksumMismatch(path: path)
        }
    }

    /// Recomputes every tensor's checksum; returns the names of tensors whose data changed.
    /// `progress` gets (tensors done, tensor count). Reads the whole file.
    public func corruptedTensors(progress: ((Int, Int) -> Void)? = nil) throws -> [String] {
        try checkHeaderIntegrity()
        guard case let .array(type, values)? = value(GGUFIntegrity.tensorsKey) else {
            throw GGUFError.noChecksums(path: path)
        }
        guard type == .uint64, values.count == tensors.count else {
            throw GGUFError.malformedIntegrity(path: path, key: GGUFIntegrity.tensorsKey)
        }
        var corrupted: [String] = []
        for (i, (tensor, stored)) in zip(tensors, values).enumerated() {
            let bytes = data(tensor)
            if case let .uint64(expected) = stored, XXH64.hash(bytes) == expected {
            } else {
                corrupted.append(tensor.name)
            }
            // Verified pages are not needed again; dropping them keeps memory flat on large files.
            let start = dataOffset + tensor.offset
            mappedFile.release(start..<start + tensor.byteCount)
            progress?(i + 1, tensors.count)
        }
        return corrupted
    }
}

extension GGUFEncoder {
    mutating func tensorInfo(_ t: GGUFTensorInfo) {
        string(t.name)
        integer(UInt32(t.dimensions.count))
        for d in t.dimensions { integer(UInt64(d)) }
        integer(t.type.rawValue)
        integer(UInt64(t.offset))
    }
}
