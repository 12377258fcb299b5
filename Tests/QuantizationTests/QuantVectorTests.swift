import Foundation
import XCTest
@testable import Quantization

/// Compares our Q8_0 / Q4_0 codecs with vectors produced by gguf-py (llama.cpp's independent Python
/// implementation) through Scripts/make_quant_vectors.py.
final class QuantVectorTests: XCTestCase {
    struct Manifest: Decodable {
        let rows: Int
        let columns: Int
        let q4_0_negative_zero_blocks: [Int]
    }

    private func vectors() throws -> (Manifest, URL) {
        let folder = try XCTUnwrap(Bundle.module.url(forResource: "Vectors", withExtension: nil))
        let manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: folder.appendingPathComponent("manifest.json")))
        return (manifest, folder)
    }

    private func floats(_ url: URL) throws -> [Float] {
        let data = try Data(contentsOf: url)
        return data.withUnsafeBytes { raw in (0..<data.count / 4).map { raw.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) } }
    }

    func testQ8_0BytesEqualGGUFPyForEveryBlock() throws {
        let (m, folder) = try vectors()
        let inputs = try floats(folder.appendingPathComponent("inputs.f32"))
        XCTAssertEqual(inputs.count, m.rows * m.columns)
        let expected = try [UInt8](Data(contentsOf: folder.appendingPathComponent("q8_0.bin")))
        let ours = try quantize(.q8_0, inputs)
        XCTAssertEqual(ours.count, expected.count)
        let block = GGMLType.q8_0.bytesPerBlock
        for b in 0..<ours.count / block where ours[b * block..<(b + 1) * block] != expected[b * block..<(b + 1) * block] {
            XCTFail("Q8_0 block \(b) differs: ours \(Array(ours[b * block..<(b + 1) * block])), gguf \(Array(expected[b * block..<(b + 1) * block]))")
        }
    }

    func testQ4_0BytesEqualGGUFPyExceptDocumentedNegativeZeroScale() throws {
        let (m, folder) = try vectors()
        let inputs = try floats(folder.appendingPathComponent("inputs.f32"))
        let expected = try [UInt8](Data(contentsOf: folder.appendingPathComponent("q4_0.bin")))
        let ours = try quantize(.q4_0, inputs)
        XCTAssertEqual(ours.count, expected.count)
        XCTAssertFalse(m.q4_0_negative_zero_blocks.isEmpty, "the vectors should exercise the -0 block")
        let block = GGMLType.q4_0.bytesPerBlock
        for b in 0..<ours.count / block {
            let mine = Array(ours[b * block..<(b + 1) * block]), theirs = Array(expected[b * block..<(b + 1) * block])
            if m.q4_0_negative_zero_blocks.contains(b) {
                // ggml C keeps its initial max = +0 and stores d = 0/-8 = -0; gguf-py stores +0.
                XCTAssertEqual(Array(mine[0..<2]), [0x00, 0x80], "block \(b): ggml C stores d = -0")
                XCTAssertEqual(Array(theirs[0..<2]), [0x00, 0x00])
                XCTAssertEqual(Array(mine[2...]), Array(theirs[2...]))
            } else if mine != theirs {
                XCTFail("Q4_0 block \(b) differs: ours \(mine), gguf \(theirs)")
            }
        }
    }

    func testDequantizationEqualsGGUFPy() throws {
        let (m, folder) = try vectors()
        for (type, stem) in [(GGMLType.q8_0, "q8_0"), (.q4_0, "q4_0")] {
            let bytes = try Data(contentsOf: folder.appendingPathComponent("\(stem).bin"))
            let expected = try floats(folder.appendingPathComponent("\(stem).dequant.f32"))
            let ours = try bytes.withUnsafeBytes { try dequantize(type, $0, count: m.rows * m.columns) }
            XCTAssertEqual(ours.count, expected.count)
            for i in 0..<ours.count where ours[i] != expected[i] {   // == also equates -0 and +0
                XCTFail("\(stem) element \(i): ours \(ours[i]), gguf \(expected[i])")
                break
            }
        }
    }
}
