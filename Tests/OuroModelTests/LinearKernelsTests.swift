import Quantization
import XCTest
@testable import OuroModel

final class LinearKernelsTests: XCTestCase {
    private var generator = SplitMix(seed: 7)

    private func randomFloats(_ n: Int, scale: Float = 1) -> [Float] {
        (0..<n).map { _ in generator.nextFloat() * scale }
    }

    /// A weight tensor of `type` holding `values` ([rows, cols]) encoded with quantizeRow.
    private func tensor(_ type: GGMLType, _ values: [Float], rows: Int, cols: Int) -> WeightTensor {
        let rowBytes = type.rowByteCount(cols)!
        var bytes = [UInt8](repeating: 0, count: rows * rowBytes)
        values.withUnsafeBufferPointer { v in
            bytes.withUnsafeMutableBytes { b in
                for r in 0..<rows { quantizeRow(type, v.baseAddress! + r * cols, count: cols, into: b.baseAddress! + r * rowBytes) }
            }
        }
        let owned = bytes.withUnsafeBytes { OwnedBytes(copying: $0) }
        return WeightTensor(type: type, shape: [rows, cols], bytes: owned.bytes, owner: owned)
    }

    private func apply(_ w: WeightTensor, _ x: [Float], tokens: Int, integerPrefill: Bool = true) -> [Float] {
        let kernels = LinearKernels(maxColumns: w.columns, integerPrefill: integerPrefill)
        var y = [Float](repeating: .nan, count: tokens * w.rows)
        x.withUnsafeBufferPointer { xp in
            y.withUnsafeMutableBufferPointer { yp in kernels.linear(w, xp.baseAddress!, tokens: tokens, into: yp.baseAddress!) }
        }
        return y
    }

    /// Row by row through the T == 1 path.
    private func applyOneByOne(_ w: WeightTensor, _ x: [Float], tokens: Int) -> [Float] {
        (0..<tokens).flatMap { t in apply(w, Array(x[t * w.columns ..< (t + 1) * w.columns]), tokens: 1) }
    }

    private func assertRelativelyClose(_ a: [Float], _ b: [Float], _ tolerance: Float, _ what: String,
                                       file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, file: file, line: line)
        let scale = max(b.map(abs).max() ?? 0, 1e-30)
        let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
        XCTAssertLessThanOrEqual(worst / scale, tolerance, what, file: file, line: line)
    }

    /// Plain double-precision reference of x · Wᵀ.
    private func reference(_ w: [Float], rows: Int, cols: Int, _ x: [Float], tokens: Int) -> [Float] {
        (0..<tokens).flatMap { t in
            (0..<rows).map { r in
                Float((0..<cols).reduce(0.0) { $0 + Double(w[r * cols + $1]) * Double(x[t * cols + $1]) })
            }
        }
    }

    /// Worst-case error from rounding activations to int8 blocks: per block, the quant step is
    /// max|x|/127 and each rounding moves a value by at most half of it.
    private func activationQuantizationBound(_ w: [Float], rows: Int, cols: Int, _ x: [Float], tokens: Int) -> [Float] {
        (0..<tokens).flatMap { t in
            (0..<rows).map { r in
                stride(from: 0, to: cols, by: 32).reduce(Float(0)) { total, b in
                    let step = (b..<b + 32).map { abs(x[t * cols + $0]) }.max()! / 127
                    return total + (b..<b + 32).reduce(Float(0)) { $0 + abs(w[r * cols + $1]) } * step / 2
                }
            }
        }
    }

    func testQ8MatrixAgreesWithItsDequantizedF32Matrix() throws {
        let rows = 300, cols = 96, tokens = 5     // 300 rows: two full tiles and a partial one
        let w = randomFloats(rows * cols), x = randomFloats(tokens * cols)
        let q8 = tensor(.q8_0, w, rows: rows, cols: cols)
        let dequantized = try dequantize(.q8_0, q8.bytes, count: rows * cols)
        let f32 = tensor(.f32, dequantized, rows: rows, cols: cols)
        let expected = apply(f32, x, tokens: tokens)
        assertRelativelyClose(apply(q8, x, tokens: tokens, integerPrefill: false), expected, 1e-4, "tiled Q8_0 vs f32")
        // The integer paths also quantize the activations to int8 (as ggml does): within the error
        // bound of that rounding, and the T == 1 and T > 1 integer paths agree to float rounding.
        let bound = activationQuantizationBound(dequantized, rows: rows, cols: cols, x, tokens: tokens)
        let integer = apply(q8, x, tokens: tokens), integerOneByOne = applyOneByOne(q8, x, tokens: tokens)
        for i in expected.indices {
            XCTAssertLessThanOrEqual(abs(integer[i] - expected[i]), bound[i] * 1.001 + 1e-5, "integer Q8_0 [\(i)]")
        }
        assertRelativelyClose(integerOneByOne, integer, 1e-5, "integer T == 1 vs T > 1")
        assertRelativelyClose(expected, reference(dequantized, rows: rows, cols: cols, x, tokens: tokens), 1e-5, "f32 vs double")
    }

    func testSingleTokenDotPathAgreesWithTiledPathForEveryType() throws {
        // Rows of 256: whole blocks of every type, the K-quants' super-blocks included.
        let rows = 257, cols = 256, tokens = 3
        let w = randomFloats(rows * cols), x = randomFloats(tokens * cols)
        for type in GGMLType.allCases {
            let weight = tensor(type, w, rows: rows, cols: cols)
            let tiled = apply(weight, x, tokens: tokens, integerPrefill: false)
            let dotted = applyOneByOne(weight, x, tokens: tokens)
            let dequantized = try dequantize(type, weight.bytes, count: rows * cols)
            let exact = reference(dequantized, rows: rows, cols: cols, x, tokens: tokens)
            assertRelativelyClose(tiled, exact, 1e-4, "\(type) vs double reference")
            if LinearKernels.integerKernelType(type) != nil {
                let integer = apply(weight, x, tokens: tokens)
                assertRelativelyClose(dotted, integer, 1e-5, "\(type) integer T == 1 vs T > 1")
                let bound = activationQuantizationBound(dequantized, rows: rows, cols: cols, x, tokens: tokens)
                for i in exact.indices {
                    XCTAssertLessThanOrEqual(abs(integer[i] - exact[i]), bound[i] * 1.001 + 1e-5, "\(type) [\(i)]")
                }
            } else {
                assertRelativelyClose(dotted, tiled, 1e-4, "\(type) T == 1 vs T > 1")
            }
        }
    }

    func testLargeSingleTokenProductSplitAcrossThreadsMatchesReference() throws {
        let rows = 1024, cols = 256      // above the parallel threshold
        let w = randomFloats(rows * cols), x = randomFloats(cols)
        let weight = tensor(.bf16, w, rows: rows, cols: cols)
        let exact = reference(try dequantize(.bf16, weight.bytes, count: rows * cols), rows: rows, cols: cols, x, tokens: 1)
        assertRelativelyClose(apply(weight, x, tokens: 1), exact, 1e-5, "bf16 parallel dot")
    }

    func testMisalignedF32DataIsCopiedAligned() {
        let owned = OwnedBytes(copying: UnsafeRawBufferPointer(start: nil, count: 0))
        let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 * 8 + 1, alignment: 16)
        defer { raw.deallocate() }
        for i in 0..<8 { (raw.baseAddress! + 1 + 4 * i).storeBytes(of: Float(i), as: Float.self) }
        let view = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(raw)[1..<33])
        let aligned = WeightTensor(type: .f32, shape: [2, 4], bytes: view, owner: owned).alignedForFloatAccess()
        XCTAssertEqual(Int(bitPattern: aligned.bytes.baseAddress!) % 4, 0)
        XCTAssertEqual(aligned.floats(), (0..<8).map(Float.init))
    }
}

/// Deterministic uniform floats in [-1, 1) for tests.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func nextFloat() -> Float { Float(next() >> 40) / Float(1 << 23) - 1 }
}
