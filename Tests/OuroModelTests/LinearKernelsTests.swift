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

    private func apply(_ w: WeightTensor, _ x: [Float], tokens: Int) -> [Float] {
        let kernels = LinearKernels(maxColumns: w.columns)
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

    func testQ8MatrixAgreesWithItsDequantizedF32Matrix() throws {
        let rows = 300, cols = 96, tokens = 5     // 300 rows: two full tiles and a partial one
        let w = randomFloats(rows * cols), x = randomFloats(tokens * cols)
        let q8 = tensor(.q8_0, w, rows: rows, cols: cols)
        let dequantized = try dequantize(.q8_0, q8.bytes, count: rows * cols)
        let f32 = tensor(.f32, dequantized, rows: rows, cols: cols)
        let expected = apply(f32, x, tokens: tokens)
        assertRelativelyClose(apply(q8, x, tokens: tokens), expected, 1e-4, "tiled Q8_0 vs f32")
        assertRelativelyClose(applyOneByOne(q8, x, tokens: tokens), expected, 1e-4, "dot Q8_0 vs f32")
        assertRelativelyClose(expected, reference(dequantized, rows: rows, cols: cols, x, tokens: tokens), 1e-5, "f32 vs double")
    }

    func testSingleTokenDotPathAgreesWithTiledPathForEveryType() throws {
        let rows = 257, cols = 64, tokens = 3
        let w = randomFloats(rows * cols), x = randomFloats(tokens * cols)
        for type in GGMLType.allCases {
            let weight = tensor(type, w, rows: rows, cols: cols)
            let tiled = apply(weight, x, tokens: tokens)
            let dotted = applyOneByOne(weight, x, tokens: tokens)
            assertRelativelyClose(dotted, tiled, 1e-4, "\(type) T == 1 vs T > 1")
            let exact = reference(try dequantize(type, weight.bytes, count: rows * cols), rows: rows, cols: cols, x, tokens: tokens)
            assertRelativelyClose(tiled, exact, 1e-4, "\(type) vs double reference")
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
