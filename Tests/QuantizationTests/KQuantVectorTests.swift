import Foundation
import XCTest
@testable import Quantization

/// Q3_K / Q4_K / Q5_K / Q6_K / IQ4_NL / IQ4_XS / imatrix Q4_0 against Scripts/make_kquant_vectors.py: quantized bytes from
/// ggml's own C quantizers, dequantized values from gguf-py.
final class KQuantVectorTests: XCTestCase {
    struct Manifest: Decodable { let rows: Int; let columns: Int; let random_blocks: Int }

    private func folder() throws -> (Manifest, URL) {
        let vectors = try XCTUnwrap(Bundle.module.url(forResource: "Vectors", withExtension: nil))
        let folder = vectors.appendingPathComponent("KQuants")
        let m = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: folder.appendingPathComponent("manifest.json")))
        return (m, folder)
    }

    private func floats(_ url: URL) throws -> [Float] {
        let data = try Data(contentsOf: url)
        return data.withUnsafeBytes { raw in (0..<data.count / 4).map { raw.loadUnaligned(fromByteOffset: 4 * $0, as: Float.self) } }
    }

    private func bytes(_ url: URL) throws -> [UInt8] { try [UInt8](Data(contentsOf: url)) }

    /// Quantizes every row (one call per row, as the C harness does) and compares block by block.
    private func assertMatchesGGML(_ type: GGMLType, file: String, importance useImportance: Bool,
                                   quantizer: ((ArraySlice<Float>, ArraySlice<Float>?) throws -> [UInt8])? = nil) throws {
        let (m, folder) = try folder()
        let inputs = try floats(folder.appendingPathComponent("inputs.f32"))
        let importance = try floats(folder.appendingPathComponent("importance.f32"))
        let expected = try bytes(folder.appendingPathComponent(file))
        let rowBytes = try type.checkedRowByteCount(m.columns)
        XCTAssertEqual(expected.count, m.rows * rowBytes)
        var mismatches = 0
        for r in 0..<m.rows {
            let row = inputs[r * m.columns..<(r + 1) * m.columns]
            let imp = useImportance ? importance[r * m.columns..<(r + 1) * m.columns] : nil
            let ours = try quantizer?(row, imp) ?? quantize(type, Array(row), importance: imp.map(Array.init))
            let theirs = Array(expected[r * rowBytes..<(r + 1) * rowBytes])
            if ours != theirs {
                mismatches += 1
                let first = zip(ours, theirs).enumerated().first { $0.element.0 != $0.element.1 }!.offset
                XCTFail("\(file) row \(r) differs first at byte \(first): ours \(ours[first]), ggml \(theirs[first])")
            }
        }
        XCTAssertEqual(mismatches, 0)
    }

    func testQ4_KBytesEqualGGMLReference() throws { try assertMatchesGGML(.q4_K, file: "q4_k.ggml.bin", importance: false) }
    func testQ4_KBytesEqualGGMLWithImportance() throws { try assertMatchesGGML(.q4_K, file: "q4_k.ggml.imatrix.bin", importance: true) }
    func testQ6_KBytesEqualGGMLReference() throws { try assertMatchesGGML(.q6_K, file: "q6_k.ggml.bin", importance: false) }
    func testQ6_KBytesEqualGGMLWithImportance() throws { try assertMatchesGGML(.q6_K, file: "q6_k.ggml.imatrix.bin", importance: true) }
    func testIQ4_NLBytesEqualGGML() throws { try assertMatchesGGML(.iq4_nl, file: "iq4_nl.ggml.bin", importance: false) }
    func testIQ4_NLBytesEqualGGMLWithImportance() throws { try assertMatchesGGML(.iq4_nl, file: "iq4_nl.ggml.imatrix.bin", importance: true) }
    func testQ3_KBytesEqualGGMLReference() throws { try assertMatchesGGML(.q3_K, file: "q3_k.ggml.bin", importance: false) }
    func testQ3_KBytesEqualGGMLWithImportance() throws { try assertMatchesGGML(.q3_K, file: "q3_k.ggml.imatrix.bin", importance: true) }
    func testQ5_KBytesEqualGGMLReference() throws { try assertMatchesGGML(.q5_K, file: "q5_k.ggml.bin", importance: false) }
    func testQ5_KBytesEqualGGMLWithImportance() throws { try assertMatchesGGML(.q5_K, file: "q5_k.ggml.imatrix.bin", importance: true) }
    func testIQ4_XSBytesEqualGGML() throws { try assertMatchesGGML(.iq4_xs, file: "iq4_xs.ggml.bin", importance: false) }
    func testIQ4_XSBytesEqualGGMLWithImportance() throws { try assertMatchesGGML(.iq4_xs, file: "iq4_xs.ggml.imatrix.bin", importance: true) }
    func testQ4_0WithImportanceEqualsGGMLImatrixQ4_0() throws { try assertMatchesGGML(.q4_0, file: "q4_0.ggml.imatrix.bin", importance: true) }

    func testSearchedQ4_0WithImportanceEqualsGGMLImatrixQ4_0() throws {
        try assertMatchesGGML(.q4_0, file: "q4_0.ggml.imatrix.bin", importance: true) { row, imp in
            try quantizeQ4_0Searched(Array(row), importance: imp.map(Array.init))
        }
    }

    /// Bit-exact against gguf-py, on ggml's blocks and on random blocks that set every field.
    func testDequantizationEqualsGGUFPy() throws {
        let (m, folder) = try folder()
        for (type, stem) in [(GGMLType.q4_K, "q4_k"), (.q6_K, "q6_k"), (.iq4_nl, "iq4_nl"),
                             (.q3_K, "q3_k"), (.q5_K, "q5_k"), (.iq4_xs, "iq4_xs")] {
            for (source, count) in [("ggml", m.rows * m.columns), ("random", m.random_blocks * type.blockSize)] {
                let raw = try Data(contentsOf: folder.appendingPathComponent("\(stem).\(source).bin"))
                let expected = try floats(folder.appendingPathComponent("\(stem).\(source).dequant.f32"))
                let ours = try raw.withUnsafeBytes { try dequantize(type, $0, count: count) }
                XCTAssertEqual(ours.count, expected.count)
                var differing = 0
                for i in 0..<ours.count where ours[i].bitPattern != expected[i].bitPattern && !(ours[i].isNaN && expected[i].isNaN) {
                    if differing == 0 { XCTFail("\(stem).\(source) element \(i): ours \(ours[i]), gguf \(expected[i])") }
                    differing += 1
                }
                XCTAssertEqual(differing, 0, "\(stem).\(source)")
            }
        }
    }

    func testDotOfRandomBlocksMatchesDequantizedDot() throws {
        let (m, folder) = try folder()
        var rng = SplitMix64(seed: 11)
        for (type, stem) in [(GGMLType.q4_K, "q4_k"), (.q6_K, "q6_k"), (.iq4_nl, "iq4_nl"),
                             (.q3_K, "q3_k"), (.q5_K, "q5_k"), (.iq4_xs, "iq4_xs")] {
            let raw = try Data(contentsOf: folder.appendingPathComponent("\(stem).random.bin"))
            let weights = try floats(folder.appendingPathComponent("\(stem).random.dequant.f32"))
            let count = m.random_blocks * type.blockSize
            let x = (0..<count).map { _ in Float.random(in: -1...1, using: &rng) }
            let exact = zip(weights, x).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            let magnitude = zip(weights, x).reduce(0.0) { $0 + abs(Double($1.0) * Double($1.1)) }
            let (fast, reference) = raw.withUnsafeBytes { r in
                x.withUnsafeBufferPointer { xp in
                    (dotRow(type, r.baseAddress!, xp.baseAddress!, count: count),
                     referenceDotRow(type, r.baseAddress!, xp.baseAddress!, count: count))
                }
            }
            XCTAssertEqual(Double(fast), exact, accuracy: 1e-5 * magnitude, "\(type) fast")
            XCTAssertEqual(Double(reference), exact, accuracy: 1e-5 * magnitude, "\(type) reference")
        }
    }
}
