import Foundation
import GGUF
import OuroIO
import SafeTensors

/// What a converted file was made from: each safetensors file's name, size and XXH64 content hash,
/// stored as `ouro.source.files` / `ouro.source.sizes` / `ouro.source.xxh64` (parallel arrays), so a
/// user can tell which checkpoint a file came from and check it against the download.
struct SourceIdentity {
    struct File {
        let name: String
        let size: Int
        let hash: UInt64
    }

    let files: [File]

    /// The safetensors files the checkpoint's weights come from (the index's shards, or model.safetensors).
    init(folder: String) throws {
        let checkpoint = try SafeTensorsCheckpoint(folder: folder)
        files = try checkpoint.files.map(\.path).sorted().map { path in
            let mapped = try MappedFile(path: path)
            return File(name: URL(fileURLWithPath: path).lastPathComponent, size: mapped.count, hash: Self.hash(mapped))
        }
    }

    /// Hashes in slices and drops each slice's pages afterwards, so memory stays flat on large files.
    static func hash(_ file: MappedFile) -> UInt64 {
        var h = XXH64()
        let slice = 64 << 20
        var offset = 0
        file.adviseSequential()
        while offset < file.count {
            let end = min(file.count, offset + slice)
            h.update(UnsafeRawBufferPointer(rebasing: file.bytes[offset..<end]))
            file.release(offset..<end)
            offset = end
        }
        return h.digest()
    }

    func metadata() -> [(String, GGUFValue)] {
        [
            ("ouro.source.files", .array(.string, files.map { .string($0.name) })),
            ("ouro.source.sizes", .array(.uint64, files.map { .uint64(UInt64($0.size)) })),
            ("ouro.source.xxh64", .array(.uint64, files.map { .uint64($0.hash) })),
        ]
    }
}
