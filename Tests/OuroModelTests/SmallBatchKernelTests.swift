import CKernels
import OuroTestSupport
import Quantization
import XCTest
@testable import OuroModel

/// The small-batch products (2...CK_SMALL_T_MAX_TOKENS tokens: serve's batched decode steps,
/// speculative verification) at the best level: against plain C on quantized rows for 1...9 tokens,
/// row remainders around the four-row groups, block remainders, one and three threads; and the
/// claim `ck_decode_identical_tokens` makes: up to that many tokens, every token's output is bit for
/// bit the output of a one-token product of that token alone.
final class SmallBatchKernelTests: XCTestCase {
    private var generator = SplitMix(seed: 41)

    override func tearDown() {
        ck_set_level(ck_best_level())
        super.tearDown()
    }

    private static let types: [GGMLType] = [.q4_0, .iq4_nl, .q8_0, .q6_K, .q4_K]

    /// (rows, columns) per type: rows 1...5, 7, 17 (four-row groups and remainders), block counts
    /// with every remainder mod 4 (Q4_0 / IQ4_NL steps of four blocks) and mod 2 (Q8_0's pairs), and
    /// products large enough to be split over threads.
    private func shapes(_ type: GGMLType) -> [(rows: Int, cols: Int)] {
        if type.blockSize == 256 { return [(1, 256), (5, 512), (7, 768), (17, 256), (70, 2048)] }
        return [(1, 32), (2, 96), (3, 160), (4, 224), (5, 64), (7, 128), (17, 2048), (6, 5632), (70, 2048)]
    }

    private func quantizedRows(_ type: GGMLType, rows: Int, cols: Int) throws -> (bytes: [UInt8], dense: [Float]) {
        let bytes = try quantize(type, (0..<rows * cols).map { _ in generator.nextFloat() * 2 - 1 })
        return (bytes, try bytes.withUnsafeBytes { try dequantize(type, $0, count: rows * cols) })
    }

    func testSmallBatchesAgreeWithPlainCAndEachTokenAlone() throws {
        XCTAssertGreaterThanOrEqual(Int(CK_SMALL_T_MAX_TOKENS), Int(CK_GEMM_MIN_TOKENS))
        var identicalTypes = 0
        for type in Self.types {
            let kernelType = LinearKernels.integerKernelType(type)!
            for (rows, cols) in shapes(type) {
                let (w, dense) = try quantizedRows(type, rows: rows, cols: cols)
                for tokens in 1...9 {
                    let x = (0..<tokens * cols).map { _ in generator.nextFloat() * 4 - 2 }
                    ck_set_level(Int32(CK_LEVEL_SCALAR))
                    let reference = ckMatmul(type, w, rows: rows, cols: cols, x, tokens: tokens, threads: 1)
                    ck_set_level(ck_best_level())
                    let identical = tokens <= Int(ck_decode_identical_tokens(kernelType))
                    let alone = identical ? (0..<tokens).map { t in
                        ckMatmul(type, w, rows: rows, cols: cols, Array(x[t * cols ..< (t + 1) * cols]), tokens: 1, threads: 1)
                    } : []
                    // Super-block types past the small-batch kernels take the GEMM and its per-256 activations.
                    let requantization = type.blockSize == 256
                        ? gemmRequantizationBounds(kernelType, dense.map(abs), x, rows: rows, cols: cols, tokens: tokens)
                        : [Float](repeating: 0, count: tokens * rows)
                    for threads in [1, 3] {
                        let y = ckMatmul(type, w, rows: rows, cols: cols, x, tokens: tokens, threads: threads)
                        for t in 0..<tokens {
                            for r in 0..<rows {
                                let i = t * rows + r
                                let what = "\(type) \(rows)x\(cols)x\(tokens) threads \(threads) t\(t) r\(r)"
                                if identical {
                                    XCTAssertEqual(y[i].bitPattern, alone[t][r].bitPattern, what)
                                }
                                // Integer block sums are exact on every path; only f32 accumulation differs.
                                var magnitude: Float = 0
                                for j in 0..<cols { magnitude += abs(dense[r * cols + j] * x[t * cols + j]) }
                                XCTAssertEqual(y[i], reference[i], accuracy: 4e-6 * magnitude + requantization[i], what)
                            }
                        }
                    }
                }
            }
            if ck_decode_identical_tokens(kernelType) >= CK_SMALL_T_MAX_TOKENS { identicalTypes += 1 }
        }
        // On a CPU with the 512-bit level and VBMI/GFNI, Q4_0, IQ4_NL, Q8_0 and Q6_K take 8-token runs.
        if ck_best_level() == Int32(CK_LEVEL_AVX512VNNI_GEMM) && ck_decode_identical_tokens(Int32(CK_TYPE_Q4_0)) > 3 {
            XCTAssertEqual(identicalTypes, 4)
        }
    }

    /// Below the 512-bit level the claim falls back to the row kernels' three tokens.
    func testDecodeIdenticalRunsAreThreeTokensBelowTheGemmLevel() {
        for level in Int32(CK_LEVEL_SCALAR)..<max(Int32(CK_LEVEL_SCALAR) + 1, ck_best_level()) {
            ck_set_level(level)
            for type in Self.types {
                XCTAssertEqual(ck_decode_identical_tokens(LinearKernels.integerKernelType(type)!), Int32(CK_GEMM_MIN_TOKENS) - 1)
            }
        }
    }

    /// LinearKernels with `decodeIdentical` set: 9 tokens of a grouped product (q/k/v style, mixed
    /// types) give each token what a one-token product gives it.
    func testDecodeIdenticalLinearMatchesOneTokenProducts() throws {
        let cols = 512, tokens = 9
        for types in [[GGMLType.q4_0, .q4_0], [.q8_0, .q6_K], [.q4_K, .q4_0]] {
            let ws = try types.map { type -> WeightTensor in
                let owned = try quantize(type, (0..<19 * cols).map { _ in generator.nextFloat() * 2 - 1 }).withUnsafeBytes { OwnedBytes(copying: $0) }
                return WeightTensor(type: type, shape: [19, cols], bytes: owned.bytes, owner: owned)
            }
            let x = (0..<tokens * cols).map { _ in generator.nextFloat() * 4 - 2 }
            let kernels = LinearKernels(maxColumns: cols, threads: 2)
            kernels.decodeIdentical = true
            var batched = ws.map { [Float](repeating: .nan, count: tokens * $0.rows) }
            x.withUnsafeBufferPointer { xp in
                let pointers = batched.indices.map { i in UnsafeMutablePointer<Float>.allocate(capacity: tokens * ws[i].rows) }
                defer { pointers.forEach { $0.deallocate() } }
                kernels.linear(ws, xp.baseAddress!, tokens: tokens, into: pointers)
                for i in batched.indices { batched[i] = Array(UnsafeBufferPointer(start: pointers[i], count: tokens * ws[i].rows)) }
            }
            kernels.decodeIdentical = false
            for (i, w) in ws.enumerated() {
                for t in 0..<tokens {
                    var one = [Float](repeating: .nan, count: w.rows)
                    x.withUnsafeBufferPointer { xp in
                        one.withUnsafeMutableBufferPointer { kernels.linear(w, xp.baseAddress! + t * cols, tokens: 1, into: $0.baseAddress!) }
                    }
                    for r in 0..<w.rows {
                        XCTAssertEqual(batched[i][t * w.rows + r].bitPattern, one[r].bitPattern, "\(types) matrix \(i) t\(t) r\(r)")
                    }
                }
            }
        }
    }
}
