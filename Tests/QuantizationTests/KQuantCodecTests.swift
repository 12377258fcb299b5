import XCTest
@testable import Quantization

/// Behaviour of the 4/6-bit encodings on synthetic weights: error levels, what importance buys,
/// what the searched Q4_0 buys, and hand-built layouts.
final class KQuantCodecTests: XCTestCase {
    /// Gaussian rows with a per-row scale, like projection weights.
    private func gaussianRows(_ rows: Int, _ columns: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        var out: [Float] = []
        out.reserveCapacity(rows * columns)
        for _ in 0..<rows {
            let scale = Float(pow(10, Double.random(in: -3...0, using: &rng)))
            for _ in 0..<columns {
                // Box-Muller
                let u1 = Float.random(in: Float.ulpOfOne...1, using: &rng), u2 = Float.random(in: 0..<1, using: &rng)
                out.append(scale * (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2))
            }
        }
        return out
    }

    private func roundTrip(_ type: GGMLType, _ x: [Float], importance: [Float]? = nil) throws -> [Float] {
        try quantize(type, x, importance: importance).withUnsafeBytes { try dequantize(type, $0, count: x.count) }
    }

    private func relativeRMS(_ x: [Float], _ y: [Float], weights: [Float]? = nil) -> Double {
        var num = 0.0, den = 0.0
        for i in x.indices {
            let w = Double(weights?[i] ?? 1)
            num += w * Double(x[i] - y[i]) * Double(x[i] - y[i])
            den += w * Double(x[i]) * Double(x[i])
        }
        return (num / den).squareRoot()
    }

    /// Row by row, so each row's importance applies to its own columns.
    private func rowwise(_ x: [Float], columns: Int, _ body: ([Float]) throws -> [Float]) rethrows -> [Float] {
        var out: [Float] = []
        for r in 0..<x.count / columns { out += try body(Array(x[r * columns..<(r + 1) * columns])) }
        return out
    }

    func testRoundTripErrorOnGaussianWeightsIsWithinUniformQuantizerBounds() throws {
        // A uniform quantizer with step Δ has RMS error Δ/√12. Over 16-32 Gaussian values the largest
        // magnitude is about 2σ, so 4-bit steps are ~0.27σ (error ~0.08σ) and Q6_K steps ~0.06σ (~0.017σ).
        let x = gaussianRows(64, 512, seed: 21)
        let q4_0 = relativeRMS(x, try roundTrip(.q4_0, x))
        let q4_K = relativeRMS(x, try roundTrip(.q4_K, x))
        let iq4 = relativeRMS(x, try roundTrip(.iq4_nl, x))
        let q6_K = relativeRMS(x, try roundTrip(.q6_K, x))
        XCTAssertLessThan(q4_0, 0.11)
        XCTAssertLessThan(q4_K, 0.10)
        XCTAssertLessThan(iq4, 0.10)
        XCTAssertLessThan(q6_K, 0.025)
        // IQ4_NL's grid is denser near zero, where Gaussian weights are; both beat max-scaled Q4_0.
        XCTAssertLessThan(iq4, q4_0)
        XCTAssertLessThan(q4_K, q4_0)
    }

    func testRoundTripErrorOfTheThreeFiveAndXSTypesIsWithinUniformQuantizerBounds() throws {
        // Same reasoning: Q3_K has 8 levels over groups of 16 (~2σ max, steps ~0.55σ, error ~0.16σ);
        // Q5_K 32 levels over 32 (steps ~0.13σ, error ~0.04σ); IQ4_XS is IQ4_NL's grid with 6-bit
        // block scales, so a little above IQ4_NL and well below Q3_K.
        let x = gaussianRows(64, 512, seed: 25)
        let q3_K = relativeRMS(x, try roundTrip(.q3_K, x))
        let q5_K = relativeRMS(x, try roundTrip(.q5_K, x))
        let iq4_xs = relativeRMS(x, try roundTrip(.iq4_xs, x))
        let iq4_nl = relativeRMS(x, try roundTrip(.iq4_nl, x))
        let q4_K = relativeRMS(x, try roundTrip(.q4_K, x))
        let q6_K = relativeRMS(x, try roundTrip(.q6_K, x))
        XCTAssertLessThan(q3_K, 0.22)
        XCTAssertLessThan(q5_K, 0.05)
        XCTAssertLessThan(iq4_xs, 0.11)
        XCTAssertLessThan(iq4_xs, q3_K)
        XCTAssertLessThan(iq4_xs, iq4_nl * 1.1)
        XCTAssertLessThan(q5_K, q4_K * 0.6)
        XCTAssertGreaterThan(q5_K, q6_K)
    }

    func testImportanceLowersImportanceWeightedError() throws {
        var rng = SplitMix64(seed: 22)
        let columns = 512
        let x = gaussianRows(32, columns, seed: 23)
        // A few columns see most of the activation energy, as in real imatrix data.
        let importance: [Float] = (0..<columns).map { _ in Float.random(in: 0..<1, using: &rng) < 0.1 ? 100 : 0.1 }
        let weights = (0..<x.count).map { importance[$0 % columns] }
        for type in [GGMLType.q4_0, .q4_K, .q6_K, .iq4_nl, .q3_K, .q5_K, .iq4_xs] {
            let plain = relativeRMS(x, try roundTrip(type, x), weights: weights)
            let guided = relativeRMS(x, try rowwise(x, columns: columns) { try roundTrip(type, $0, importance: importance) }, weights: weights)
            XCTAssertLessThan(guided, plain * 0.9, "\(type): importance-weighted error \(guided) vs \(plain) without")
        }
    }

    func testSearchedQ4_0BeatsReferenceQ4_0AndStaysValidQ4_0() throws {
        let columns = 1024
        let x = gaussianRows(32, columns, seed: 24)
        let reference = try roundTrip(.q4_0, x)
        var searched: [Float] = []
        for r in 0..<x.count / columns {
            let row = Array(x[r * columns..<(r + 1) * columns])
            let bytes = try quantizeQ4_0Searched(row, importance: nil)
            XCTAssertEqual(bytes.count, try GGMLType.q4_0.checkedRowByteCount(columns))
            searched += try bytes.withUnsafeBytes { try dequantize(.q4_0, $0, count: columns) }
        }
        let errReference = relativeRMS(x, reference), errSearched = relativeRMS(x, searched)
        XCTAssertLessThan(errSearched, errReference * 0.95, "searched \(errSearched) vs reference \(errReference)")
    }

    func testQ4_KHandBuiltBlockDequantizes() throws {
        // d = 1, dmin = 0.5; sub-block j has scale j+1 and min j (6-bit), quants q = i % 16.
        var block = [UInt8](repeating: 0, count: 144)
        block[0] = 0x00; block[1] = 0x3c      // f16 1.0
        block[2] = 0x00; block[3] = 0x38      // f16 0.5
        let sc: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 40], mn: [UInt8] = [0, 1, 2, 3, 4, 5, 6, 63]
        for j in 0..<4 { block[4 + j] = sc[j]; block[8 + j] = mn[j] }
        for j in 4..<8 {
            block[4 + j + 4] = (sc[j] & 0xf) | (mn[j] & 0xf) << 4
            block[4 + j - 4] |= (sc[j] >> 4) << 6
            block[4 + j] |= (mn[j] >> 4) << 6
        }
        for p in 0..<4 { for l in 0..<32 { block[16 + 32 * p + l] = UInt8(l % 16) | UInt8((l + 1) % 16) << 4 } }
        let y = try block.withUnsafeBytes { try dequantize(.q4_K, $0, count: 256) }
        for p in 0..<4 {
            for l in 0..<32 {
                let j0 = 2 * p, j1 = 2 * p + 1
                XCTAssertEqual(y[64 * p + l], Float(sc[j0]) * Float(l % 16) - 0.5 * Float(mn[j0]))
                XCTAssertEqual(y[64 * p + 32 + l], Float(sc[j1]) * Float((l + 1) % 16) - 0.5 * Float(mn[j1]))
            }
        }
    }

    func testQ6_KHandBuiltBlockDequantizes() throws {
        // Element e gets level e % 64 (value e % 64 - 32); scales are g - 8; d = 0.25.
        var block = [UInt8](repeating: 0, count: 210)
        for h in 0..<2 {
            for l in 0..<32 {
                let q = (0..<4).map { UInt8((128 * h + l + 32 * $0) % 64) }
                block[64 * h + l] = (q[0] & 0xf) | (q[2] & 0xf) << 4
                block[64 * h + 32 + l] = (q[1] & 0xf) | (q[3] & 0xf) << 4
                block[128 + 32 * h + l] = q[0] >> 4 | (q[1] >> 4) << 2 | (q[2] >> 4) << 4 | (q[3] >> 4) << 6
            }
        }
        for g in 0..<16 { block[192 + g] = UInt8(bitPattern: Int8(g - 8)) }
        block[208] = 0x00; block[209] = 0x34   // f16 0.25
        let y = try block.withUnsafeBytes { try dequantize(.q6_K, $0, count: 256) }
        for e in 0..<256 {
            XCTAssertEqual(y[e], 0.25 * Float(e / 16 - 8) * Float(e % 64 - 32), "element \(e)")
        }
    }

    func testIQ4_NLMapsNibblesThroughTheNonLinearGrid() throws {
        var block = [UInt8](repeating: 0, count: 18)
        block[0] = 0x00; block[1] = 0x40      // f16 2.0
        for j in 0..<16 { block[2 + j] = UInt8(j) | UInt8(15 - j) << 4 }
        let grid: [Float] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]
        let y = try block.withUnsafeBytes { try dequantize(.iq4_nl, $0, count: 32) }
        XCTAssertEqual(Array(y[0..<16]), grid.map { 2 * $0 })
        XCTAssertEqual(Array(y[16..<32]), grid.reversed().map { 2 * $0 })
    }

    func testIQ4_NLReproducesGridMultiplesExactly() throws {
        // x = 0.5 * grid value: the least-squares scale is 0.5 exactly and every element lands on its level.
        let grid: [Float] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]
        let x = (0..<32).map { 0.5 * grid[($0 * 7) % 16] }
        XCTAssertEqual(try roundTrip(.iq4_nl, x), x)
    }

    func testBranchFreeGridSearchEqualsGGMLBisection() {
        BlockIQ4_NL.values.withUnsafeBufferPointer { v in
            var probes: [Float] = [.nan, .infinity, -.infinity, 0, -0.0, 1e30, -1e30, .leastNonzeroMagnitude]
            for k in 0..<15 {
                // Exact midpoints (ties go up), their float neighbours, and the grid values themselves.
                let mid = (Float(v[k]) + Float(v[k + 1])) / 2
                probes += [mid, mid.nextUp, mid.nextDown, Float(v[k]), Float(v[k]).nextUp, Float(v[k]).nextDown]
            }
            var rng = SplitMix64(seed: 31)
            for _ in 0..<20000 { probes.append(Float.random(in: -140...140, using: &rng)) }
            BlockIQ4_NL.floatValues.withUnsafeBufferPointer { grid in
                for x in probes {
                    XCTAssertEqual(BlockIQ4_NL.bestIndex(grid.baseAddress!, x), BlockIQ4_NL.referenceBestIndex(v.baseAddress!, x), "x = \(x)")
                }
            }
        }
    }

    func testZeroRowsQuantizeToZero() throws {
        let zeros = [Float](repeating: 0, count: 512)
        for type in [GGMLType.q4_K, .q6_K, .iq4_nl] {
            XCTAssertEqual(try roundTrip(type, zeros), zeros, "\(type)")
            XCTAssertEqual(try roundTrip(type, zeros, importance: [Float](repeating: 1, count: 512)), zeros, "\(type) with importance")
        }
        XCTAssertEqual(try quantizeQ4_0Searched(zeros, importance: nil).withUnsafeBytes { try dequantize(.q4_0, $0, count: 512) }, zeros)
    }

    func testImportanceOfWrongLengthThrows() {
        XCTAssertThrowsError(try quantize(.q4_K, [Float](repeating: 1, count: 256), importance: [1, 2])) { error in
            XCTAssertEqual(error as? QuantizationError, .importanceCountMismatch(count: 256, importance: 2))
            XCTAssertEqual("\(error)", "importance has 2 values for a row of 256 elements")
        }
        XCTAssertThrowsError(try quantizeQ4_0Searched([Float](repeating: 1, count: 48), importance: nil))
    }
}
