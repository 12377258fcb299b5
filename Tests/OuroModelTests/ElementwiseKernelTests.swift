import CKernels
import Foundation
import OuroTestSupport
import XCTest
@testable import OuroModel

/// ck_silu_gate and ck_rms_norm (the forward pass's elementwise steps) at every level against the
/// Swift loops they replaced, computed here: bit for bit.
final class ElementwiseKernelTests: XCTestCase {
    private var generator = SplitMix(seed: 29)

    override func tearDown() {
        ck_set_level(ck_best_level())
        super.tearDown()
    }

    /// The gate values: a stride through every float bit pattern (both signs, subnormals, the
    /// |x| >= 88 special path, infinities, NaNs), every value near expf's thresholds and dense
    /// values where the MLP's gates live.
    private func gateValues() -> [Float] {
        var values: [Float] = []
        for bits in stride(from: UInt32(0), to: UInt32.max - 40_000, by: 40_009) { values.append(Float(bitPattern: bits)) }
        for edge: Float in [88, 87.99, 88.72283, 88.722_84, 103.27892, 103.972_08, 104, 0, 1e-40, 1] {
            var below = edge, above = edge
            for _ in 0..<40 {
                values += [below, above, -below, -above]
                below = below.nextDown
                above = above.nextUp
            }
        }
        values += [.infinity, -.infinity, .nan, -Float.nan, .leastNonzeroMagnitude, .greatestFiniteMagnitude]
        for _ in 0..<20_000 { values.append((generator.nextFloat() - 0.5) * 24) }
        return values
    }

    private func assertSameBits(_ got: [Float], _ want: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(got.count, want.count, file: file, line: line)
        var mismatches = 0
        for i in 0..<min(got.count, want.count) where got[i].bitPattern != want[i].bitPattern && !(got[i].isNaN && want[i].isNaN) {
            mismatches += 1
            if mismatches <= 5 { XCTFail("\(what) [\(i)]: \(got[i]) (\(got[i].bitPattern)) vs \(want[i]) (\(want[i].bitPattern))", file: file, line: line) }
        }
        XCTAssertEqual(mismatches, 0, "\(what): values that differ", file: file, line: line)
    }

    func testSiluGateIsTheScalarExpressionBitForBitOnEveryLevel() {
        let gate = gateValues()
        let up = gate.indices.map { i in i % 3 == 0 ? 1 : generator.nextFloat() * 4 - 2 }
        let want = zip(gate, up).map { x, u in (x / (1 + expf(-x))) * u }
        for level in 0...ck_best_level() {
            ck_set_level(level)
            for count in [gate.count, 15, 16, 17, 33] {   // whole vectors and the scalar tail
                var got = Array(gate.prefix(count))
                got.withUnsafeMutableBufferPointer { g in up.withUnsafeBufferPointer { ck_silu_gate(g.baseAddress!, $0.baseAddress!, count) } }
                #if canImport(Glibc)
                assertSameBits(got, Array(want.prefix(count)), "silu level \(level) count \(count)")
                #else
                // Another libm's expf may round a few e^-x the other way: one ulp of the quotient.
                for i in 0..<count where !want[i].isNaN && want[i].isFinite {
                    XCTAssertLessThanOrEqual(abs(got[i] - want[i]), 2 * want[i].ulp, "silu level \(level) [\(i)]")
                }
                #endif
            }
        }
    }

    /// The RMSNorm loop as it was in OuroRunner: squares summed in element order, then w · (x · s).
    private func referenceNorm(_ x: [Float], rows: Int, cols: Int, weight: [Float], eps: Float) -> [Float] {
        var y = x
        for r in 0..<rows {
            var sum: Float = 0
            for i in 0..<cols { sum += x[r * cols + i] * x[r * cols + i] }
            let scale = 1 / (sum / Float(cols) + eps).squareRoot()
            for i in 0..<cols { y[r * cols + i] = weight[i] * (x[r * cols + i] * scale) }
        }
        return y
    }

    func testRmsNormIsTheInOrderLoopBitForBitOnEveryLevel() {
        // Rows around the 16-row groups, columns a multiple of 16 (the vector path) and not.
        for (rows, cols) in [(1, 2048), (15, 64), (16, 2048), (17, 48), (37, 256), (33, 40), (64, 2048)] {
            let x = (0..<rows * cols).map { i in (generator.nextFloat() - 0.5) * Float(1 + i % 7 * 40) }
            let weight = (0..<cols).map { _ in generator.nextFloat() * 2 }
            let eps: Float = 1e-6
            let want = referenceNorm(x, rows: rows, cols: cols, weight: weight, eps: eps)
            for level in 0...ck_best_level() {
                ck_set_level(level)
                var out = [Float](repeating: .nan, count: rows * cols)
                x.withUnsafeBufferPointer { xp in
                    out.withUnsafeMutableBufferPointer { ck_rms_norm(xp.baseAddress!, $0.baseAddress!, weight, rows, cols, eps) }
                }
                assertSameBits(out, want, "norm \(rows)x\(cols) level \(level)")
                var inPlace = x
                inPlace.withUnsafeMutableBufferPointer { ck_rms_norm($0.baseAddress!, $0.baseAddress!, weight, rows, cols, eps) }
                assertSameBits(inPlace, want, "norm in place \(rows)x\(cols) level \(level)")
            }
        }
    }
}
