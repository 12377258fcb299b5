import Foundation
import XCTest
@testable import GGUF
import OuroIO
import Quantization

final class GGUFRoundTripTests: XCTestCase {
    static let everyValue: [(String, GGUFValue)] = [
        ("test.u8", .uint8(200)), ("test.i8", .int8(-5)), ("test.u16", .uint16(60000)), ("test.i16", .int16(-30000)),
        ("test.u32", .uint32(4_000_000_000)), ("test.i32", .int32(-2_000_000_000)), ("test.f32", .float32(1.5)),
        ("test.bool_true", .bool(true)), ("test.bool_false", .bool(false)), ("test.string", .string("héllo ✓")),
        ("test.empty_string", .string("")),
        ("test.u64", .uint64(.max)), ("test.i64", .int64(.min)), ("test.f64", .float64(.pi)),
        ("test.array_u32", .array(.uint32, [.uint32(1), .uint32(2), .uint32(3)])),
        ("test.array_string", .array(.string, [.string("a"), .string(""), .string("Ω")])),
        ("test.array_empty", .array(.float32, [])),
        ("test.array_nested", .array(.array, [.array(.uint8, [.uint8(1), .uint8(2)]), .array(.uint8, [.uint8(3)])])),
    ]

    /// (name, dimensions innermost first, type)
    static let tensorSpecs: [(String, [Int], GGMLType)] = [
        ("t.f32", [5, 3], .f32), ("t.f16", [7], .f16), ("t.bf16", [4, 2], .bf16),
        ("t.q8_0", [64, 3], .q8_0), ("t.q4_0", [32, 2], .q4_0),
    ]

    /// Writes the round-trip file; returns the stored bytes and the floats they came from, per tensor.
    private func writeEverything(to path: String) throws -> [String: (bytes: [UInt8], floats: [Float])] {
        var rng = SystemRandomNumberGenerator()
        let writer = try GGUFWriter(destination: path)
        for (key, value) in Self.everyValue { try writer.add(key, value) }
        var contents: [String: (bytes: [UInt8], floats: [Float])] = [:]
        for (name, dims, type) in Self.tensorSpecs {
            try writer.addTensor(name: name, dimensions: dims, type: type)
            let floats = (0..<dims.reduce(1, *)).map { _ in Float.random(in: -3...3, using: &rng) }
            contents[name] = (try quantize(type, floats), floats)
        }
        for (name, _, _) in Self.tensorSpecs {
            let bytes = contents[name]!.bytes
            // Deliberately odd chunking, including an empty chunk.
            try writer.writeTensorData(UnsafeRawBufferPointer(start: nil, count: 0))
            var start = 0
            while start < bytes.count {
                let end = min(bytes.count, start + 7)
                try writer.writeTensorData(Array(bytes[start..<end]))
                start = end
            }
        }
        try writer.finish()
        return contents
    }

    func testRoundTripsEveryValueTypeAndTensorType() throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let path = folder + "/all.gguf"
        let contents = try writeEverything(to: path)
        let file = try GGUFFile(path: path)
        XCTAssertEqual(file.version, 3)
        XCTAssertEqual(file.alignment, 64)
        XCTAssertEqual(file.metadata.map(\.key), Self.everyValue.map(\.0) + ["general.alignment"])
        for (key, value) in Self.everyValue { XCTAssertEqual(file.value(key), value, key) }
        XCTAssertEqual(file.value("general.alignment"), .uint32(64))
        XCTAssertEqual(file.dataOffset % 64, 0)
        XCTAssertEqual(file.tensors.map(\.name), Self.tensorSpecs.map(\.0))
        var expectedOffset = 0
        for (name, dims, type) in Self.tensorSpecs {
            let info = try XCTUnwrap(file.tensor(name))
            XCTAssertEqual(info.dimensions, dims)
            XCTAssertEqual(info.type, type)
            XCTAssertEqual(info.offset, expectedOffset, "tensors are contiguous in info order, each padded")
            XCTAssertEqual(info.byteCount, contents[name]!.bytes.count)
            XCTAssertEqual(Array(file.data(info)), contents[name]!.bytes, name)
            expectedOffset = alignedUp(expectedOffset + info.byteCount, to: 64)
        }
        XCTAssertEqual(file.fileSize, file.dataOffset + expectedOffset, "the last tensor is padded too")
    }

    /// The tiny file written out by hand from the GGUF specification.
    static let golden: [UInt8] = {
        var b: [UInt8] = Array("GGUF".utf8) + [3, 0, 0, 0]          // magic, version 3
        b += [1, 0, 0, 0, 0, 0, 0, 0]                               // tensor count 1
        b += [2, 0, 0, 0, 0, 0, 0, 0]                               // metadata count 2 (ours + general.alignment)
        b += [1, 0, 0, 0, 0, 0, 0, 0] + Array("a".utf8)             // key "a"
        b += [0, 0, 0, 0] + [7]                                     // u8 7
        b += [17, 0, 0, 0, 0, 0, 0, 0] + Array("general.alignment".utf8)
        b += [4, 0, 0, 0] + [32, 0, 0, 0]                           // u32 32
        b += [1, 0, 0, 0, 0, 0, 0, 0] + Array("t".utf8)             // tensor "t"
        b += [1, 0, 0, 0] + [2, 0, 0, 0, 0, 0, 0, 0]                // 1 dimension: 2
        b += [0, 0, 0, 0] + [0, 0, 0, 0, 0, 0, 0, 0]                // F32, offset 0
        XCTAssertEqual(b.count, 104)
        b += [UInt8](repeating: 0, count: 128 - 104)                // pad to 32
        b += [0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0]       // 1.0, -2.0
        b += [UInt8](repeating: 0, count: 160 - 136)                // tensor padded to 32
        return b
    }()

    private func writeGolden(to path: String) throws {
        let writer = try GGUFWriter(destination: path, alignment: 32)
        try writer.add("a", .uint8(7))
        try writer.addTensor(name: "t", dimensions: [2], type: .f32)
        try [Float(1), -2].withUnsafeBytes { try writer.writeTensorData($0) }
        try writer.finish()
    }

    func testWriterProducesHandBuiltGoldenBytes() throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try writeGolden(to: folder + "/tiny.gguf")
        XCTAssertEqual(try readBytes(folder + "/tiny.gguf"), Self.golden)
        let file = try GGUFFile(path: folder + "/tiny.gguf")
        XCTAssertEqual(file.dataOffset, 128)
        XCTAssertEqual(Array(file.data(file.tensors[0])), Array(Self.golden[128..<136]))
    }

    // MARK: - gguf-py cross-check

    /// The interpreter with gguf-py: $OURO_PYTHON (e.g. a venv's python) or python3 on PATH.
    private func pythonWithGGUF() throws -> String {
        let python = ProcessInfo.processInfo.environment["OURO_PYTHON"] ?? "python3"
        let (status, _, _) = try run([python, "-c", "import gguf"])
        guard status == 0 else { throw XCTSkip("gguf-py not importable by \(python); set OURO_PYTHON or pip install gguf") }
        return python
    }

    private func run(_ arguments: [String]) throws -> (Int32, Data, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, data, errors)
    }

    private var checkScript: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Scripts/check_gguf.py").path
    }

    private func check(_ path: String, python: String) throws -> [String: Any] {
        let (status, data, errors) = try run([python, checkScript, path])
        XCTAssertEqual(status, 0, errors + String(decoding: data, as: UTF8.self))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    func testGGUFPyReadsOurFilesAndAgreesOnEveryTensor() throws {
        let python = try pythonWithGGUF()
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }

        try writeGolden(to: folder + "/tiny.gguf")
        let tiny = try check(folder + "/tiny.gguf", python: python)
        XCTAssertEqual(tiny["alignment"] as? Int, 32)
        XCTAssertEqual(tiny["data_offset"] as? Int, 128)
        let tinyKeys = try XCTUnwrap(tiny["metadata"] as? [String: [String: Any]])
        XCTAssertEqual(tinyKeys["a"]?["value"] as? Int, 7)
        XCTAssertEqual(tinyKeys["a"]?["type"] as? String, "UINT8")
        let tinyTensor = try XCTUnwrap((tiny["tensors"] as? [[String: Any]])?.first)
        XCTAssertEqual(tinyTensor["first_bits"] as? [UInt32], [Float(1).bitPattern, Float(-2).bitPattern])

        let contents = try writeEverything(to: folder + "/all.gguf")
        let all = try check(folder + "/all.gguf", python: python)
        XCTAssertEqual(all["version"] as? Int, 3)
        XCTAssertEqual(all["ok"] as? Bool, true, "\(all["problems"] ?? "")")
        let metadata = try XCTUnwrap(all["metadata"] as? [String: [String: Any]])
        XCTAssertEqual(Set(metadata.keys), Set(Self.everyValue.map(\.0) + ["general.alignment"]))
        XCTAssertEqual(metadata["test.string"]?["value"] as? String, "héllo ✓")
        XCTAssertEqual(metadata["test.i64"]?["value"] as? Int, Int(Int64.min))
        XCTAssertEqual(metadata["test.u16"]?["type"] as? String, "UINT16")
        XCTAssertEqual(metadata["test.array_string"]?["value"] as? [String], ["a", "", "Ω"])
        XCTAssertEqual(metadata["test.array_nested"]?["value"] as? [Int], [1, 2, 3])   // gguf-py flattens
        XCTAssertEqual(metadata["test.array_nested"]?["leaf_type"] as? String, "UINT8")
        XCTAssertEqual(metadata["general.alignment"]?["value"] as? Int, 64)
        let tensors = try XCTUnwrap(all["tensors"] as? [[String: Any]])
        XCTAssertEqual(tensors.map { $0["name"] as? String }, Self.tensorSpecs.map(\.0))
        for (entry, (name, dims, type)) in zip(tensors, Self.tensorSpecs) {
            XCTAssertEqual(entry["type"] as? String, type.name, name)
            XCTAssertEqual(entry["shape"] as? [Int], dims, name)
            let ours = try contents[name]!.bytes.withUnsafeBytes { try dequantize(type, $0, count: dims.reduce(1, *)) }
            XCTAssertEqual(entry["first_bits"] as? [UInt32], ours.prefix(8).map(\.bitPattern), name)
            let sum = ours.reduce(0.0) { $0 + Double($1) }
            XCTAssertEqual(try XCTUnwrap(entry["sum"] as? Double), sum, accuracy: 1e-9 * max(1, abs(sum)), name)
        }
    }
}
