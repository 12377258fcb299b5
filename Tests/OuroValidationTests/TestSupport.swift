import CZstd
import Foundation
import SafeTensors
import XCTest
@testable import OuroValidation

enum TestSupport {
    static let fixtures = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let fixtureNames = ["ouro-tiny-a", "ouro-tiny-b", "ouro-trained-s"]

    static func fixture(_ name: String, _ file: String = "") -> String {
        fixtures.appendingPathComponent(name).appendingPathComponent(file).path
    }

    /// reference.json of a fixture, parsed independently of the code under test.
    static func referenceJSON(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: fixture(name, "reference.json")))
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("ouro-val-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// zstd level 3 with the one-shot API (content size recorded in the frame header).
    static func zstdCompress(_ input: [UInt8], level: Int32 = 3) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: ZSTD_compressBound(input.count))
        let n = input.withUnsafeBytes { src in
            out.withUnsafeMutableBytes { dst in
                ZSTD_compress(dst.baseAddress, dst.count, src.baseAddress, src.count, level)
            }
        }
        precondition(ZSTD_isError(n) == 0)
        return Array(out[0..<n])
    }

    /// A tensor to write into a synthetic bundle.
    struct Tensor {
        var name: String
        var dtype: String
        var shape: [Int]
        var bytes: [UInt8]
        static func f32(_ name: String, _ shape: [Int], _ values: [Float]? = nil) -> Tensor {
            let count = shape.reduce(1, *)
            let v = values ?? (0..<count).map { Float($0 % 7) * 0.25 }
            return Tensor(name: name, dtype: "F32", shape: shape, bytes: v.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) })
        }
        static func i64(_ name: String, _ values: [Int64], shape: [Int]? = nil) -> Tensor {
            Tensor(name: name, dtype: "I64", shape: shape ?? [values.count],
                   bytes: values.flatMap { withUnsafeBytes(of: $0.littleEndian, Array.init) })
        }
    }

    /// Serialises a safetensors file: header length, JSON header padded with spaces to 8 bytes, data.
    static func safetensors(_ tensors: [Tensor], metadata: [String: String]? = nil) -> [UInt8] {
        var entries: [String] = []
        if let metadata {
            let pairs = metadata.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\"\($0.value)\"" }
            entries.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
        }
        var offset = 0
        var data: [UInt8] = []
        for t in tensors {
            entries.append("\"\(t.name)\":{\"dtype\":\"\(t.dtype)\",\"shape\":\(t.shape),\"data_offsets\":[\(offset),\(offset + t.bytes.count)]}")
            offset += t.bytes.count
            data += t.bytes
        }
        var header = Array("{\(entries.joined(separator: ","))}".utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        return withUnsafeBytes(of: UInt64(header.count).littleEndian, Array.init) + header + data
    }

    /// A minimal valid one-prompt bundle: S=2, T=3, V=5, H=4, thresholds 0.5, exit at step 0, greedy, labels.
    static func smallBundle(replacing: [Tensor] = [], dropping: Set<String> = [], metadata: [String: String]? = nil) -> [UInt8] {
        var tensors: [Tensor] = [
            .i64("p0.input_ids", [1, 2, 3]),
            .f32("p0.step_logits", [2, 3, 5]),
            .f32("p0.step_hidden", [2, 3, 4]),
            .f32("p0.gate_logits", [2, 3]),
            .f32("p0.exit_pdf", [3, 2]),
            .f32("p0.final_logits", [3, 5]),
            .f32("p0.weighted_logits", [3, 5]),
            .f32("p0.threshold_0.5.logits", [3, 5]),
            .i64("p0.threshold_0.5.exit_steps", [0, 1, 1]),
            .f32("p0.exit_at_step_0.logits", [3, 5]),
            .i64("p0.greedy_cached", [4, 4]),
            .i64("p0.greedy_uncached", [4, 4]),
            .i64("p0.labels", [2, 3, 4]),
        ]
        for r in replacing {
            if let i = tensors.firstIndex(where: { $0.name == r.name }) { tensors[i] = r } else { tensors.append(r) }
        }
        tensors.removeAll { dropping.contains($0.name) }
        return safetensors(tensors, metadata: metadata ?? ["format": "ouro-reference", "format_version": "1"])
    }

    /// A bundle holding only the given prompts of a fixture bundle (faster model tests).
    static func subsetBundle(_ fixture: String, prompts: [Int], in dir: URL) throws -> String {
        let file = try SafeTensorsFile(path: self.fixture(fixture, "reference.safetensors"))
        let prefixes = prompts.map { "p\($0)." }
        let tensors = file.tensors.filter { info in prefixes.contains { info.name.hasPrefix($0) } }.map {
            Tensor(name: $0.name, dtype: $0.dtype.rawValue, shape: $0.shape, bytes: Array(file.data($0)))
        }
        let path = dir.appendingPathComponent("\(fixture)-subset.safetensors")
        try write(safetensors(tensors, metadata: file.metadata), to: path)
        return path.path
    }

    static func write(_ bytes: [UInt8], to url: URL) throws {
        try Data(bytes).write(to: url)
    }

    /// Runs `body` and returns the ValidationFailure it throws (fails the test otherwise).
    static func failure(_ body: () throws -> Void, file: StaticString = #filePath, line: UInt = #line) -> ValidationFailure? {
        do {
            try body()
            XCTFail("expected a ValidationFailure", file: file, line: line)
        } catch let error as ValidationFailure {
            return error
        } catch {
            XCTFail("expected a ValidationFailure, got \(error)", file: file, line: line)
        }
        return nil
    }
}
