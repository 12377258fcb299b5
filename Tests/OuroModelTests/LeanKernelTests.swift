import CKernels
import OuroTestSupport
import Quantization
import XCTest
@testable import OuroModel

/// The compute-lean small-batch kernels (`ck_matmul_lean`, serve's batched decode steps): on raw
/// Q4_0 / Q8_0 blocks against the plain C reference for 1...9 tokens, row counts around the thread
/// chunks, block counts around the kernels' groups (16 blocks for Q4_0, 8 for Q8_0), one and three
/// threads; and through LinearKernels.throughput on grouped products with types that have no lean
/// kernel in the same group.
final class LeanKernelTests: XCTestCase {
    private var generator = SplitMix(seed: 77)

    /// Random blocks: every byte of the quants random (all nibbles, -128...127), scales random
    /// normal halves in [2^-7, 2^-6).
    private func rawBlocks(_ type: GGMLType, rows: Int, cols: Int) -> [UInt8] {
        let blockBytes = type == .q4_0 ? 18 : 34
        var bytes: [UInt8] = []
        for _ in 0..<rows * cols / 32 {
            let scale = UInt16(0x2000) + UInt16(generator.next() % 0x400)
            bytes += [UInt8(scale & 0xff), UInt8(scale >> 8)]
            bytes += (2..<blockBytes).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        }
        return bytes
    }

    private func lean(_ type: GGMLType, _ w: [UInt8], rows: Int, cols: Int, _ a: inout ck_activations, threads: Int) -> [Float] {
        leanProduct(LinearKernels.integerKernelType(type)!, w, rowBytes: type.rowByteCount(cols)!, rows: rows, &a, threads: threads)
    }

    func testLeanProductsAgreeWithPlainC() throws {
        if ck_best_level() == Int32(CK_LEVEL_AVX512VNNI_GEMM) && ck_decode_identical_tokens(Int32(CK_TYPE_Q4_0)) > 3 {
            // This CPU has the 512-bit level with VBMI/GFNI: the lean kernels must be the ones tested.
            XCTAssertEqual(ck_lean_tokens(Int32(CK_TYPE_Q4_0)), Int32(CK_SMALL_T_MAX_TOKENS))
            XCTAssertEqual(ck_lean_tokens(Int32(CK_TYPE_Q8_0)), Int32(CK_SMALL_T_MAX_TOKENS))
        }
        let shapes = [(1, 32), (3, 224), (5, 256), (2, 512), (17, 544), (33, 736), (16, 2048), (7, 5632)]
        let activations = QuantizedActivations()
        for type in [GGMLType.q4_0, .q8_0] {
            let kernelType = LinearKernels.integerKernelType(type)!
            for (rows, cols) in shapes {
                let w = rawBlocks(type, rows: rows, cols: cols)
                for tokens in 1...9 {
                    let x = (0..<tokens * cols).map { _ in generator.nextFloat() * 4 - 2 }
                    try x.withUnsafeBufferPointer { xp in
                        var a = activations.quantize(xp.baseAddress!, tokens: tokens, cols: cols)
                        let reference = leanReference(kernelType, w, rowBytes: type.rowByteCount(cols)!, rows: rows, &a)
                        let dense = try w.withUnsafeBytes { try dequantize(type, $0, count: rows * cols) }
                        for threads in [1, 3] {
                            let y = lean(type, w, rows: rows, cols: cols, &a, threads: threads)
                            for t in 0..<tokens {
                                for r in 0..<rows {
                                    // Integer block dots are exact on every path; only the f32 sums differ.
                                    var magnitude: Float = 0
                                    for j in 0..<cols { magnitude += abs(dense[r * cols + j] * x[t * cols + j]) }
                                    let i = t * rows + r
                                    XCTAssertEqual(y[i], reference[i], accuracy: 4e-6 * magnitude,
                                                   "\(type) \(rows)x\(cols)x\(tokens) threads \(threads) t\(t) r\(r)")
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Weights packed at load (`ck_lean_pack`, serve's --pack-weights): products on the packed copy
    /// against the plain C reference on the ggml rows (same shapes, tokens and threads as above, so
    /// block counts with a tail past the last full group), and bit for bit the lean kernel's results
    /// on the unpacked rows (the same lanes and sums, only the weight side is loaded instead of built).
    func testPackedProductsAgreeWithPlainCAndTheUnpackedKernel() throws {
        let shapes = [(1, 32), (3, 224), (5, 256), (2, 512), (17, 544), (33, 736), (16, 2048), (7, 5632)]
        let activations = QuantizedActivations()
        for type in [GGMLType.q4_0, .q8_0] {
            let kernelType = LinearKernels.integerKernelType(type)!
            for (rows, cols) in shapes {
                let w = rawBlocks(type, rows: rows, cols: cols)
                let rowBytes = type.rowByteCount(cols)!
                var packed = [UInt8](repeating: 0, count: w.count)
                let ok = w.withUnsafeBytes { wp in
                    packed.withUnsafeMutableBytes { ck_lean_pack(kernelType, wp.baseAddress!, rowBytes, Int32(rows), Int32(cols), $0.baseAddress!, 3) }
                }
                XCTAssertEqual(ok, 1, "\(type) \(rows)x\(cols)")
                // Q4_0: a packed row is a permutation of the ggml row's bytes.
                for r in 0..<rows where type == .q4_0 {
                    XCTAssertEqual(w[r * rowBytes ..< (r + 1) * rowBytes].sorted(), packed[r * rowBytes ..< (r + 1) * rowBytes].sorted(),
                                   "\(type) \(rows)x\(cols) row \(r)")
                }
                for tokens in 1...9 {
                    let x = (0..<tokens * cols).map { _ in generator.nextFloat() * 4 - 2 }
                    x.withUnsafeBufferPointer { xp in
                        var a = activations.quantize(xp.baseAddress!, tokens: tokens, cols: cols)
                        let reference = leanReference(kernelType, w, rowBytes: rowBytes, rows: rows, &a)
                        let scale = reference.map { abs($0) }.max()!
                        for threads in [1, 3] {
                            let unpacked = lean(type, w, rows: rows, cols: cols, &a, threads: threads)
                            var y = [Float](repeating: .nan, count: tokens * rows)
                            w.withUnsafeBytes { wp in
                                packed.withUnsafeBytes { pp in
                                    y.withUnsafeMutableBufferPointer { yp in
                                        var product = ck_product(type: kernelType, w: wp.baseAddress!, row_bytes: rowBytes, rows: Int32(rows),
                                                                 y: yp.baseAddress!, ldy: rows)
                                        var copies: [UnsafeRawPointer?] = [pp.baseAddress!]
                                        ck_matmul_lean_packed(&product, &copies, 1, &a, Int32(threads))
                                    }
                                }
                            }
                            let what = "\(type) \(rows)x\(cols)x\(tokens) threads \(threads)"
                            for i in y.indices {
                                XCTAssertEqual(y[i], reference[i], accuracy: 1e-5 * scale, "\(what) element \(i)")
                            }
                            XCTAssertEqual(y, unpacked, what)
                        }
                    }
                }
            }
        }
        // Types and sizes the packing does not take: refused, nothing written.
        var out = [UInt8](repeating: 7, count: 144)
        let w = [UInt8](repeating: 1, count: 144)
        for (type, cols) in [(Int32(CK_TYPE_Q4_K), 256), (Int32(CK_TYPE_Q4_0), 48)] {
            let written = w.withUnsafeBytes { wp in out.withUnsafeMutableBytes { ck_lean_pack(type, wp.baseAddress!, 144, 1, Int32(cols), $0.baseAddress!, 1) } }
            XCTAssertEqual(written, 0, "type \(type) cols \(cols)")
        }
        XCTAssertEqual(out, [UInt8](repeating: 7, count: 144))
    }

    /// The gated unit in one job (`ck_matmul_lean_gated`, serve's batched MLP): bit for bit the two
    /// lean products (packed or not, types mixed) followed by silu(gate) * up computed here, for row
    /// counts around the 16-row tasks, 1...8 tokens, one and three threads; rows that differ are
    /// refused with nothing written.
    func testGatedUnitIsTheTwoProductsThenSilu() {
        let activations = QuantizedActivations()
        for (gateType, upType, packGate) in [(GGMLType.q4_0, GGMLType.q4_0, true), (.q8_0, .q8_0, false), (.q4_0, .q8_0, true)] {
            for (rows, cols) in [(40, 544), (16, 2048), (3, 256)] {
                let wg = rawBlocks(gateType, rows: rows, cols: cols), wu = rawBlocks(upType, rows: rows, cols: cols)
                let gateKernel = LinearKernels.integerKernelType(gateType)!, upKernel = LinearKernels.integerKernelType(upType)!
                var packed = [UInt8](repeating: 0, count: wg.count)
                _ = wg.withUnsafeBytes { wp in
                    packed.withUnsafeMutableBytes {
                        ck_lean_pack(gateKernel, wp.baseAddress!, gateType.rowByteCount(cols)!, Int32(rows), Int32(cols), $0.baseAddress!, 1)
                    }
                }
                for tokens in 1...8 {
                    let x = (0..<tokens * cols).map { _ in generator.nextFloat() * 4 - 2 }
                    x.withUnsafeBufferPointer { xp in
                        var a = activations.quantize(xp.baseAddress!, tokens: tokens, cols: cols)
                        for threads in [1, 3] {
                            let g = lean(gateType, wg, rows: rows, cols: cols, &a, threads: threads)
                            let u = lean(upType, wu, rows: rows, cols: cols, &a, threads: threads)
                            let expected = zip(g, u).map { (x, u) in (x / (1 + expf(-x))) * u }
                            var gate = [Float](repeating: .nan, count: tokens * rows), up = gate
                            let done = wg.withUnsafeBytes { gp in
                                wu.withUnsafeBytes { upp in
                                    packed.withUnsafeBytes { pp in
                                        gate.withUnsafeMutableBufferPointer { gy in
                                            up.withUnsafeMutableBufferPointer { uy in
                                                var products = [
                                                    ck_product(type: gateKernel, w: gp.baseAddress!, row_bytes: gateType.rowByteCount(cols)!,
                                                               rows: Int32(rows), y: gy.baseAddress!, ldy: rows),
                                                    ck_product(type: upKernel, w: upp.baseAddress!, row_bytes: upType.rowByteCount(cols)!,
                                                               rows: Int32(rows - 1), y: uy.baseAddress!, ldy: rows),
                                                ]
                                                var copies: [UnsafeRawPointer?] = [packGate ? pp.baseAddress! : nil, nil]
                                                XCTAssertEqual(ck_matmul_lean_gated(products, &copies, &a, Int32(threads)), 0)
                                                XCTAssertTrue(gy.allSatisfy(\.isNaN), "a refused unit wrote")
                                                products[1].rows = Int32(rows)
                                                return ck_matmul_lean_gated(products, &copies, &a, Int32(threads))
                                            }
                                        }
                                    }
                                }
                            }
                            XCTAssertEqual(done, 1)
                            let what = "\(gateType)/\(upType) \(rows)x\(cols)x\(tokens) threads \(threads)"
                            XCTAssertEqual(gate.map(\.bitPattern), expected.map(\.bitPattern), what)
                            XCTAssertEqual(up.map(\.bitPattern), u.map(\.bitPattern), what)
                        }
                    }
                }
            }
        }
    }

    /// The plain reference itself against float arithmetic on the dequantized weights and activations.
    func testReferenceIsTheQuantizedDotProduct() throws {
        let rows = 3, cols = 96, tokens = 2
        for type in [GGMLType.q4_0, .q8_0] {
            let w = rawBlocks(type, rows: rows, cols: cols)
            let dense = try w.withUnsafeBytes { try dequantize(type, $0, count: rows * cols) }
            let x = (0..<tokens * cols).map { _ in generator.nextFloat() * 4 - 2 }
            let activations = QuantizedActivations()
            x.withUnsafeBufferPointer { xp in
                var a = activations.quantize(xp.baseAddress!, tokens: tokens, cols: cols)
                let y = leanReference(LinearKernels.integerKernelType(type)!, w, rowBytes: type.rowByteCount(cols)!, rows: rows, &a)
                for t in 0..<tokens {
                    for r in 0..<rows {
                        var expected: Double = 0, magnitude: Double = 0
                        for j in 0..<cols {
                            let xq = Double(a.qs[t * cols + j]) * Double(a.d[t * cols / 32 + j / 32])
                            expected += Double(dense[r * cols + j]) * xq
                            magnitude += abs(Double(dense[r * cols + j]) * xq)
                        }
                        XCTAssertEqual(Double(y[t * rows + r]), expected, accuracy: 1e-5 * magnitude, "\(type) t\(t) r\(r)")
                    }
                }
            }
        }
    }

    /// LinearKernels.throughput on grouped products (q/k/v and gate/up style, with K-quant and IQ4
    /// matrices that take the usual kernels inside the same job) against one-token products token by
    /// token (the contract; throughput off at 4+ tokens runs Q4_K's prefill GEMM, whose activations
    /// are requantized per 256), 1...9 tokens (9: throughput leaves it to the usual product).
    func testThroughputLinearAgreesWithTheUsualProducts() throws {
        let cols = 512
        for types in [[GGMLType.q4_0, .q8_0, .q4_0], [.q8_0, .q6_K], [.q4_K, .q4_0], [.iq4_nl]] {
            let ws = try types.map { type -> WeightTensor in
                let rows = type == .q8_0 ? 23 : 40
                return try WeightTensor(type: type, shape: [rows, cols],
                                        copying: quantize(type, (0..<rows * cols).map { _ in generator.nextFloat() * 2 - 1 }))
            }
            for tokens in 1...9 {
                let x = (0..<tokens * cols).map { _ in generator.nextFloat() * 4 - 2 }
                var results: [[[Float]]] = []
                for throughput in [false, true] {
                    let kernels = LinearKernels(maxColumns: cols, threads: 2)
                    kernels.throughput = throughput
                    let pointers = ws.map { UnsafeMutablePointer<Float>.allocate(capacity: tokens * $0.rows) }
                    defer { pointers.forEach { $0.deallocate() } }
                    x.withUnsafeBufferPointer { xp in
                        if throughput || tokens > Int(CK_SMALL_T_MAX_TOKENS) {   // beyond 8 both are the usual product
                            kernels.linear(ws, xp.baseAddress!, tokens: tokens, into: pointers)
                        } else {
                            for t in 0..<tokens {
                                kernels.linear(ws, xp.baseAddress! + t * cols, tokens: 1, into: zip(ws, pointers).map { $1 + t * $0.rows })
                            }
                        }
                    }
                    results.append(ws.indices.map { Array(UnsafeBufferPointer(start: pointers[$0], count: tokens * ws[$0].rows)) })
                }
                for i in ws.indices {
                    let scale = results[0][i].map { abs($0) }.max()!
                    for (k, (usual, lean)) in zip(results[0][i], results[1][i]).enumerated() {
                        XCTAssertEqual(lean, usual, accuracy: 1e-5 * scale, "\(types) matrix \(i) tokens \(tokens) element \(k)")
                    }
                }
            }
        }
    }
}
