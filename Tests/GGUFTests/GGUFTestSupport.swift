import Foundation
import XCTest
@testable import GGUF
import Quantization

/// A fresh temporary folder per test, removed afterwards.
func makeTemporaryFolder() throws -> String {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("GGUFTests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url.path
}

func writeBytes(_ bytes: [UInt8], to path: String) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}

func readBytes(_ path: String) throws -> [UInt8] {
    try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
}

/// Builds GGUF bytes field by field, so tests can corrupt exactly one thing.
struct RawGGUF {
    struct Tensor {
        var name: String
        var dimensions: [UInt64]
        var type: UInt32
        var offset: UInt64
    }

    var magic: [UInt8] = Array("GGUF".utf8)
    var version: UInt32 = 3
    var tensorCount: UInt64?          // nil: the real count
    var keyValueCount: UInt64?
    var keyValues: [(key: String, type: UInt32, encode: (inout GGUFEncoder) -> Void)] = []
    var tensors: [Tensor] = []
    var alignment = 32
    var dataSize = 0                  // bytes of (patterned) data after the padding

    mutating func add(_ key: String, _ value: GGUFValue) {
        keyValues.append((key, value.type.rawValue, { $0.value(value) }))
    }

    func bytes() -> [UInt8] {
        var e = GGUFEncoder()
        e.bytes(magic)
        e.integer(version)
        e.integer(tensorCount ?? UInt64(tensors.count))
        e.integer(keyValueCount ?? UInt64(keyValues.count))
        for kv in keyValues {
            e.string(kv.key)
            e.integer(kv.type)
            kv.encode(&e)
        }
        for t in tensors {
            e.string(t.name)
            e.integer(UInt32(t.dimensions.count))
            for d in t.dimensions { e.integer(d) }
            e.integer(t.type)
            e.integer(t.offset)
        }
        let padded = (e.data.count + alignment - 1) / alignment * alignment
        e.bytes([UInt8](repeating: 0, count: padded - e.data.count))
        e.bytes((0..<dataSize).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        return e.data
    }

    /// A valid file: three metadata entries and two F32 tensors of 8 and 4 elements.
    static func valid() -> RawGGUF {
        var raw = RawGGUF()
        raw.add("general.architecture", .string("ouro"))
        raw.add("ouro.block_count", .uint32(2))
        raw.add("tokenizer.ggml.tokens", .array(.string, [.string("a"), .string("bc")]))
        raw.tensors = [Tensor(name: "a", dimensions: [8], type: 0, offset: 0),
                       Tensor(name: "b", dimensions: [2, 2], type: 0, offset: 32)]
        raw.dataSize = 48
        return raw
    }
}

extension XCTestCase {
    /// Opens `bytes` as a GGUF file and returns the GGUFError it must throw.
    func readError(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) throws -> GGUFError? {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/bad.gguf"
        try writeBytes(bytes, to: path)
        do {
            _ = try GGUFFile(path: path)
            XCTFail("expected an error", file: file, line: line)
            return nil
        } catch let error as GGUFError {
            XCTAssertFalse("\(error)".contains("\n"), file: file, line: line)
            XCTAssertTrue("\(error)".hasPrefix(path + ": "), "\(error)", file: file, line: line)
            return error
        }
    }
}
