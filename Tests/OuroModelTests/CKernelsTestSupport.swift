import CKernels
import Quantization
import XCTest
@testable import OuroModel

/// y [tokens, rows] of raw `type` rows `w` times `x` through ck_matmul at the current level
/// (shared by the CKernels*Tests).
func ckMatmul(_ type: GGMLType, _ w: [UInt8], rows: Int, cols: Int, _ x: [Float], tokens: Int, threads: Int) -> [Float] {
    let activations = QuantizedActivations()
    var y = [Float](repeating: .nan, count: tokens * rows)
    x.withUnsafeBufferPointer { xp in
        var a = activations.quantize(xp.baseAddress!, tokens: tokens, cols: cols)
        w.withUnsafeBytes { wp in
            y.withUnsafeMutableBufferPointer { yp in
                ck_matmul(LinearKernels.integerKernelType(type)!, wp.baseAddress!, type.rowByteCount(cols)!,
                          Int32(rows), &a, yp.baseAddress!, rows, Int32(threads))
            }
        }
    }
    return y
}

/// The prefill GEMM's extra error on super-block types: it requantizes the activations per 256
/// (x~ = q·d of the per-32 form, D = max|x~| / 127 with max|x~| <= max|x| (1 + 1/254)), each value
/// within D/2 of x~, so y moves by at most Σ |w| D/2 over the row (|w| <= `terms`). Zero for products
/// that do not take the GEMM: tokens within `ck_decode_identical_tokens` run the decode kernels.
func gemmRequantizationBounds(_ kernelType: Int32, _ terms: [Float], _ x: [Float], rows: Int, cols: Int, tokens: Int) -> [Float] {
    guard ck_level() >= Int32(CK_LEVEL_AVX512VNNI_GEMM), tokens > Int(ck_decode_identical_tokens(kernelType)) else {
        return [Float](repeating: 0, count: tokens * rows)
    }
    var bounds = [Float](repeating: 0, count: tokens * rows)
    for t in 0..<tokens {
        for s in 0..<cols / 256 {
            let span = t * cols + s * 256 ..< t * cols + (s + 1) * 256
            let halfStep = x[span].reduce(Float(0)) { max($0, abs($1)) } / 127 * (1 + 1 / 254) / 2
            for r in 0..<rows {
                var sum: Float = 0
                for j in s * 256 ..< (s + 1) * 256 { sum += terms[r * cols + j] }
                bounds[t * rows + r] += sum * halfStep
            }
        }
    }
    return bounds
}

/// Super-block types (256 elements a block) on raw random blocks, for the K-quant and new-type
/// kernel tests: `rawBlocks(type, count)`, `termMagnitudes(type, w, rows, cols)` (|scaled weight|
/// per element, the rounding scale) and `random()` (activation values in [0, 1)) come from the test.
struct SuperBlockKernelCheck {
    let rawBlocks: (GGMLType, Int) -> [UInt8]
    let termMagnitudes: (GGMLType, [UInt8], Int, Int) throws -> [Float]
    let random: () -> Float

    /// Every level at or above AVX2, one and three threads, against plain C: row counts around the
    /// GEMM tile (16), the four-row decode kernels and the thread chunks, 1, 2, 3, 8 and 22
    /// super-blocks, tokens 1...9.
    func everyLevelAgreesWithPlainC(_ types: [GGMLType], file: StaticString = #filePath, line: UInt = #line) throws {
        let shapes = [(1, 1), (15, 2), (16, 1), (17, 3), (33, 8), (65, 2), (130, 1), (5, 22)]
        for type in types {
            for (shape, (rows, superBlocks)) in shapes.enumerated() {
                let cols = superBlocks * 256
                let w = rawBlocks(type, rows * superBlocks)
                let terms = try termMagnitudes(type, w, rows, cols)
                for tokens in 1...9 where (tokens + shape) % 3 == 0 || tokens <= 2 || tokens == 9 || rows <= 17 {
                    // Signed activations: the kernels subtract offsets (128 or 4 times the activation
                    // sums) that cancel differently when x changes sign.
                    let x = (0..<tokens * cols).map { _ in random() * 4 - 2 }
                    ck_set_level(Int32(CK_LEVEL_SCALAR))
                    let reference = ckMatmul(type, w, rows: rows, cols: cols, x, tokens: tokens, threads: 1)
                    XCTAssertFalse(reference.contains { $0.isNaN }, file: file, line: line)
                    for level in Int32(CK_LEVEL_AVX2)...max(Int32(CK_LEVEL_AVX2), ck_best_level()) where level <= ck_best_level() {
                        XCTAssertEqual(ck_set_level(level), level, file: file, line: line)
                        let requantization = gemmRequantizationBounds(LinearKernels.integerKernelType(type)!, terms, x,
                                                                      rows: rows, cols: cols, tokens: tokens)
                        for threads in [1, 3] {
                            let y = ckMatmul(type, w, rows: rows, cols: cols, x, tokens: tokens, threads: threads)
                            for t in 0..<tokens {
                                for r in 0..<rows {
                                    var magnitude: Float = 0
                                    for j in 0..<cols { magnitude += terms[r * cols + j] * abs(x[t * cols + j]) }
                                    // Integer sums are exact on every path; the f32 sums of the scaled terms
                                    // (offsets subtracted at a different point) differ by rounding only, plus
                                    // the GEMM's per-256 activations.
                                    XCTAssertEqual(y[t * rows + r], reference[t * rows + r],
                                                   accuracy: 4e-6 * magnitude + requantization[t * rows + r],
                                                   "\(type) level \(level) threads \(threads) \(rows)x\(cols)x\(tokens) t\(t) r\(r)",
                                                   file: file, line: line)
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The prefill GEMM level (16-row x 8-token tiles) against plain C: tokens 4...17 (whole token
    /// groups and every remainder), row counts around the tile and its remainders, one to three
    /// threads (tasks of 16 rows share per-job activation terms). Within float noise plus the
    /// requantization bound (`gemmRequantizationBounds`), and within float noise alone when every
    /// 32-block's largest value is the same (the per-256 activations are then the per-32 ones). Then one activations buffer
    /// re-quantized from different values between calls, as a forward pass reuses it: a result
    /// built from the previous call's activation terms would fail here.
    func gemmAgreesWithPlainC(_ types: [GGMLType], file: StaticString = #filePath, line: UInt = #line) throws {
        guard ck_best_level() >= Int32(CK_LEVEL_AVX512VNNI_GEMM) else { throw XCTSkip("no 512-bit VNNI GEMM on this CPU") }
        let shapes = [(1, 1), (16, 2), (17, 1), (31, 3), (40, 2), (65, 1)]
        func check(_ y: [Float], _ reference: [Float], _ terms: [Float], _ x: [Float], rows: Int, cols: Int, tokens: Int,
                   requantization: [Float], _ what: String) {
            for t in 0..<tokens {
                for r in 0..<rows {
                    var magnitude: Float = 0
                    for j in 0..<cols { magnitude += terms[r * cols + j] * abs(x[t * cols + j]) }
                    XCTAssertEqual(y[t * rows + r], reference[t * rows + r], accuracy: 4e-6 * magnitude + requantization[t * rows + r],
                                   "\(what) \(rows)x\(cols)x\(tokens) t\(t) r\(r)", file: file, line: line)
                }
            }
        }
        for type in types {
            let kernelType = LinearKernels.integerKernelType(type)!
            for (shape, (rows, superBlocks)) in shapes.enumerated() {
                let cols = superBlocks * 256
                let w = rawBlocks(type, rows * superBlocks)
                let terms = try termMagnitudes(type, w, rows, cols)
                for tokens in 4...17 where (tokens + shape) % 2 == 0 || rows == 17 {
                    var x = (0..<tokens * cols).map { _ in random() * 4 - 1 }
                    for exact in [false, true] {
                        // Exact: integers with ±127 in every block of 32 quantize to themselves (d = 1) either way.
                        if exact { x = x.indices.map { $0 % 32 == 0 ? ($0 % 64 == 0 ? 127 : -127) : min(126, max(-126, (x[$0] * 42).rounded())) } }
                        ck_set_level(Int32(CK_LEVEL_SCALAR))
                        let reference = ckMatmul(type, w, rows: rows, cols: cols, x, tokens: tokens, threads: 1)
                        ck_set_level(Int32(CK_LEVEL_AVX512VNNI_GEMM))
                        let requantization = exact ? [Float](repeating: 0, count: tokens * rows)
                            : gemmRequantizationBounds(kernelType, terms, x, rows: rows, cols: cols, tokens: tokens)
                        for threads in 1...3 {
                            let y = ckMatmul(type, w, rows: rows, cols: cols, x, tokens: tokens, threads: threads)
                            check(y, reference, terms, x, rows: rows, cols: cols, tokens: tokens, requantization: requantization,
                                  "\(type) threads \(threads)\(exact ? " exact" : "")")
                        }
                    }
                }
            }
            // One buffer, two activations: 40 rows x 2 super-blocks x 9 tokens, three threads.
            let rows = 40, cols = 512, tokens = 9
            let w = rawBlocks(type, rows * cols / 256)
            let terms = try termMagnitudes(type, w, rows, cols)
            let activations = QuantizedActivations()
            for round in 0..<3 {
                let x = (0..<tokens * cols).map { _ in random() * 4 - Float(round) }
                ck_set_level(Int32(CK_LEVEL_SCALAR))
                let reference = ckMatmul(type, w, rows: rows, cols: cols, x, tokens: tokens, threads: 1)
                ck_set_level(Int32(CK_LEVEL_AVX512VNNI_GEMM))
                var y = [Float](repeating: .nan, count: tokens * rows)
                x.withUnsafeBufferPointer { xp in
                    var a = activations.quantize(xp.baseAddress!, tokens: tokens, cols: cols)
                    w.withUnsafeBytes { wp in
                        y.withUnsafeMutableBufferPointer { yp in
                            ck_matmul(kernelType, wp.baseAddress!, type.rowByteCount(cols)!, Int32(rows), &a, yp.baseAddress!, rows, 3)
                        }
                    }
                }
                check(y, reference, terms, x, rows: rows, cols: cols, tokens: tokens,
                      requantization: gemmRequantizationBounds(kernelType, terms, x, rows: rows, cols: cols, tokens: tokens),
                      "\(type) reused buffer round \(round)")
            }
        }
    }

    /// Plain C against dot(dequantizeRow(w), x) in f32: the only difference is the activations'
    /// int8 rounding, |x - d·q| <= d/2 with d = max|x| / 127 per block of 32, so
    /// |y - y_f32| <= Σ |w_e| d_b(e) / 2 (plus f32 rounding, 1e-5 of Σ |w x|).
    func plainCMatchesDequantizedFloatDot(_ types: [GGMLType], file: StaticString = #filePath, line: UInt = #line) throws {
        ck_set_level(Int32(CK_LEVEL_SCALAR))
        for type in types {
            let rows = 9, cols = 3 * 256, tokens = 2
            let w = rawBlocks(type, rows * cols / 256)
            let dense = try w.withUnsafeBytes { try dequantize(type, $0, count: rows * cols) }
            let x = (0..<tokens * cols).map { _ in random() * 3 }
            let y = ckMatmul(type, w, rows: rows, cols: cols, x, tokens: tokens, threads: 1)
            var tightest: Float = .infinity
            for t in 0..<tokens {
                for r in 0..<rows {
                    var exact: Double = 0, bound: Float = 0, magnitude: Float = 0
                    for j in 0..<cols {
                        let block = x[(t * cols + j / 32 * 32)..<(t * cols + j / 32 * 32 + 32)]
                        let d = block.map(abs).max()! / 127
                        exact += Double(dense[r * cols + j]) * Double(x[t * cols + j])
                        bound += abs(dense[r * cols + j]) * d / 2
                        magnitude += abs(dense[r * cols + j] * x[t * cols + j])
                    }
                    let error = abs(Double(y[t * rows + r]) - exact)
                    XCTAssertLessThanOrEqual(error, Double(bound + 1e-5 * magnitude), "\(type) t\(t) r\(r)", file: file, line: line)
                    tightest = min(tightest, bound)
                    XCTAssertGreaterThan(magnitude, 0, file: file, line: line)
                }
            }
            XCTAssertGreaterThan(tightest, 0, file: file, line: line)
        }
    }
}

/// The lean kernels' plain C reference (`ck_lean_rows_reference`) on raw rows `w` of `kernelType`
/// (Q4_0, Q8_0, Q4_K) for the quantized activations `a`: y [a.tokens, rows] (shared by LeanKernelTests
/// and LeanQ4KKernelTests).
func leanReference(_ kernelType: Int32, _ w: [UInt8], rowBytes: Int, rows: Int, _ a: inout ck_activations) -> [Float] {
    var y = [Float](repeating: .nan, count: Int(a.tokens) * rows)
    w.withUnsafeBytes { wp in
        ck_lean_rows_reference(kernelType, wp.baseAddress!, rowBytes, 0, Int32(rows), &a, &y, rows)
    }
    return y
}

/// The same product through `ck_matmul_lean` (the lean kernel where the level has one) on `threads` threads.
func leanProduct(_ kernelType: Int32, _ w: [UInt8], rowBytes: Int, rows: Int, _ a: inout ck_activations, threads: Int) -> [Float] {
    var y = [Float](repeating: .nan, count: Int(a.tokens) * rows)
    w.withUnsafeBytes { wp in
        y.withUnsafeMutableBufferPointer { yp in
            var product = ck_product(type: kernelType, w: wp.baseAddress!, row_bytes: rowBytes, rows: Int32(rows), y: yp.baseAddress!, ldy: rows)
            ck_matmul_lean(&product, 1, &a, Int32(threads))
        }
    }
    return y
}
