import CKernels
import OuroTestSupport
import Quantization
import XCTest
@testable import OuroModel

/// The compute-lean Q4_K kernel (`ck_matmul_lean` on Q4_K, kernels_lean_q4k_vnni512.c; serve's
/// batched decode steps on the default int4 preset): on raw super-blocks against the plain C
/// reference (per-32 activations, as the decode kernels) for 1...8 tokens (2...8 take the lean
/// kernel; 9+ would take the prefill GEMM, which requantizes the activations per 256; 5+ run in passes
/// of <= 4 tokens), row counts around the 16-row tasks, column counts of 1..22 super-blocks (the
/// kernel's units of 4 super-blocks whole or with 1-3 of them past the row's end), one and three threads, at every
/// kernel level (below the 512-bit level the usual kernels take the product: the same contract).
final class LeanQ4KKernelTests: XCTestCase {
    private var generator = SplitMix(seed: 4115)

    override func tearDown() {
        ck_set_level(ck_best_level())
        super.tearDown()
    }

    /// Random super-blocks: d and dmin random normal halves in [2^-8, 2^-6), every scale/min byte and
    /// nibble random (all 64 scale and min values, all 16 nibbles).
    private func rawSuperBlocks(rows: Int, cols: Int) -> [UInt8] {
        var bytes: [UInt8] = []
        for _ in 0..<rows * cols / 256 {
            for _ in 0..<2 {
                let half = UInt16(0x1c00) + UInt16(generator.next() % 0x800)
                bytes += [UInt8(half & 0xff), UInt8(half >> 8)]
            }
            bytes += (0..<140).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        }
        return bytes
    }

    /// ggml's get_scale_min_k4: sub-block j's 6-bit scale and min from a super-block's 12 bytes at `q`.
    private func scaleMin(_ q: ArraySlice<UInt8>, _ j: Int) -> (Double, Double) {
        let b = q.startIndex
        if j < 4 { return (Double(q[b + j] & 63), Double(q[b + j + 4] & 63)) }
        let sc = (q[b + j + 4] & 0x0f) | ((q[b + j - 4] >> 6) << 4)
        let m = (q[b + j + 4] >> 4) | ((q[b + j] >> 6) << 4)
        return (Double(sc), Double(m))
    }

    /// Per row and token, the sum of the magnitudes of every term the kernels add (both the scaled
    /// sub-block dot and the min term, which may nearly cancel): what float rounding is relative to.
    private func magnitudes(_ w: [UInt8], rows: Int, cols: Int, _ a: ck_activations) -> [Double] {
        let rowBytes = cols / 256 * 144, nb = cols / 32
        var out = [Double](repeating: 0, count: Int(a.tokens) * rows)
        for t in 0..<Int(a.tokens) {
            for r in 0..<rows {
                var total = 0.0
                for s in 0..<cols / 256 {
                    let p = r * rowBytes + s * 144
                    let d = abs(Double(Float(Float16(bitPattern: UInt16(w[p]) | UInt16(w[p + 1]) << 8))))
                    let dmin = abs(Double(Float(Float16(bitPattern: UInt16(w[p + 2]) | UInt16(w[p + 3]) << 8))))
                    for j in 0..<8 {
                        let (sc, m) = scaleMin(w[p + 4 ..< p + 16], j)
                        let blk = t * nb + 8 * s + j
                        var dot = 0.0, sum = 0.0
                        for l in 0..<32 {
                            let byte = w[p + 16 + 32 * (j / 2) + l]
                            let q = Double(j % 2 == 0 ? byte & 0x0f : byte >> 4)
                            let x = abs(Double(a.qs[blk * 32 + l]))
                            dot += q * x
                            sum += x
                        }
                        total += abs(Double(a.d[blk])) * (d * sc * dot + dmin * m * sum)
                    }
                }
                out[t * rows + r] = total
            }
        }
        return out
    }

    private func lean(_ w: [UInt8], rows: Int, cols: Int, _ a: inout ck_activations, threads: Int) -> [Float] {
        leanProduct(Int32(CK_TYPE_Q4_K), w, rowBytes: cols / 256 * 144, rows: rows, &a, threads: threads)
    }

    func testLeanQ4KAgreesWithPlainCAtEveryLevel() throws {
        if ck_best_level() == Int32(CK_LEVEL_AVX512VNNI_GEMM) && ck_decode_identical_tokens(Int32(CK_TYPE_Q4_0)) > 3 {
            // This CPU has the 512-bit level with VBMI/GFNI: the lean kernel must be the one tested there.
            XCTAssertEqual(ck_lean_tokens(Int32(CK_TYPE_Q4_K)), Int32(CK_SMALL_T_MAX_TOKENS))
        }
        let shapes = [(1, 256), (2, 512), (3, 768), (17, 1280), (33, 2048), (7, 5632)]
        let activations = QuantizedActivations()
        for (rows, cols) in shapes {
            let w = rawSuperBlocks(rows: rows, cols: cols)
            for tokens in 1...8 {
                let x = (0..<tokens * cols).map { _ in generator.nextFloat() * 4 - 2 }
                x.withUnsafeBufferPointer { xp in
                    var a = activations.quantize(xp.baseAddress!, tokens: tokens, cols: cols)
                    let reference = leanReference(Int32(CK_TYPE_Q4_K), w, rowBytes: cols / 256 * 144, rows: rows, &a)
                    let magnitude = magnitudes(w, rows: rows, cols: cols, a)
                    for level in Int32(CK_LEVEL_SCALAR)...ck_best_level() {
                        XCTAssertEqual(ck_set_level(level), level)
                        for threads in [1, 3] {
                            let y = lean(w, rows: rows, cols: cols, &a, threads: threads)
                            for i in y.indices {
                                // The same integer sub-block dots on every path; only the f32 sums differ.
                                XCTAssertEqual(Double(y[i]), Double(reference[i]), accuracy: 1e-5 * magnitude[i],
                                               "\(rows)x\(cols)x\(tokens) level \(level) threads \(threads) element \(i)")
                            }
                        }
                    }
                    ck_set_level(ck_best_level())
                }
            }
        }
    }

    /// The plain reference itself against double arithmetic on the dequantized weights (the
    /// Quantization module's Q4_K decoder) and activations.
    func testQ4KReferenceIsTheQuantizedDotProduct() throws {
        let rows = 3, cols = 512, tokens = 2
        let w = rawSuperBlocks(rows: rows, cols: cols)
        let dense = try w.withUnsafeBytes { try dequantize(.q4_K, $0, count: rows * cols) }
        let x = (0..<tokens * cols).map { _ in generator.nextFloat() * 4 - 2 }
        let activations = QuantizedActivations()
        x.withUnsafeBufferPointer { xp in
            var a = activations.quantize(xp.baseAddress!, tokens: tokens, cols: cols)
            let y = leanReference(Int32(CK_TYPE_Q4_K), w, rowBytes: cols / 256 * 144, rows: rows, &a)
            let magnitude = magnitudes(w, rows: rows, cols: cols, a)
            for t in 0..<tokens {
                for r in 0..<rows {
                    var expected = 0.0
                    for j in 0..<cols {
                        expected += Double(dense[r * cols + j]) * Double(a.qs[t * cols + j]) * Double(a.d[t * cols / 32 + j / 32])
                    }
                    XCTAssertEqual(Double(y[t * rows + r]), expected, accuracy: 1e-5 * magnitude[t * rows + r], "t\(t) r\(r)")
                }
            }
        }
    }

    /// The gated MLP unit on Q4_K (`ck_matmul_lean_gated`): bit for bit the two lean products and
    /// silu(gate) * up computed here.
    func testQ4KGatedUnitIsTheTwoProductsThenSilu() {
        let activations = QuantizedActivations()
        for (rows, cols) in [(40, 512), (3, 256)] {
            let wg = rawSuperBlocks(rows: rows, cols: cols), wu = rawSuperBlocks(rows: rows, cols: cols)
            for tokens in 2...8 {
                let x = (0..<tokens * cols).map { _ in generator.nextFloat() * 4 - 2 }
                x.withUnsafeBufferPointer { xp in
                    var a = activations.quantize(xp.baseAddress!, tokens: tokens, cols: cols)
                    for threads in [1, 3] {
                        let g = lean(wg, rows: rows, cols: cols, &a, threads: threads)
                        let u = lean(wu, rows: rows, cols: cols, &a, threads: threads)
                        let expected = zip(g, u).map { (x, u) in (x / (1 + expf(-x))) * u }
                        var gate = [Float](repeating: .nan, count: tokens * rows), up = gate
                        let done = wg.withUnsafeBytes { gp in
                            wu.withUnsafeBytes { upp in
                                gate.withUnsafeMutableBufferPointer { gy in
                                    up.withUnsafeMutableBufferPointer { uy in
                                        let products = [
                                            ck_product(type: Int32(CK_TYPE_Q4_K), w: gp.baseAddress!, row_bytes: cols / 256 * 144,
                                                       rows: Int32(rows), y: gy.baseAddress!, ldy: rows),
                                            ck_product(type: Int32(CK_TYPE_Q4_K), w: upp.baseAddress!, row_bytes: cols / 256 * 144,
                                                       rows: Int32(rows), y: uy.baseAddress!, ldy: rows),
                                        ]
                                        var copies: [UnsafeRawPointer?] = [nil, nil]
                                        return ck_matmul_lean_gated(products, &copies, &a, Int32(threads))
                                    }
                                }
                            }
                        }
                        XCTAssertEqual(done, 1)
                        let what = "\(rows)x\(cols)x\(tokens) threads \(threads)"
                        XCTAssertEqual(gate.map(\.bitPattern), expected.map(\.bitPattern), what)
                        XCTAssertEqual(up.map(\.bitPattern), u.map(\.bitPattern), what)
                    }
                }
            }
        }
    }
}
