import CKernels
import Foundation
import OuroTestSupport
import Quantization
import XCTest
@testable import OuroModel

/// The 4-bit block kernels (IQ4_NL everywhere; Q4_0's four-row decode kernel): every instruction-set
/// level against the plain C level on raw blocks, the plain C level against an independent
/// dequantize-then-dot, and the quantized model on every level.
final class CKernelsNibbleTests: XCTestCase {
    private var generator = SplitMix(seed: 20)

    override func tearDown() {
        ck_set_level(ck_best_level())
        super.tearDown()
    }

    /// ggml's kvalues_iq4nl, written out here rather than read from the code under test.
    private static let iq4Values: [Float] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]

    /// `rows` rows of `blocks` raw 18-byte blocks: f16 scales of either sign in [2^-8, 2^2), random
    /// nibbles, and in each row's first block every index 0...15 in both the low and high nibbles.
    private func rawRows(rows: Int, blocks: Int) -> [UInt8] {
        var w = [UInt8](repeating: 0, count: rows * blocks * 18)
        for r in 0..<rows {
            for b in 0..<blocks {
                let o = (r * blocks + b) * 18
                let exponent = UInt16(7 + generator.next() % 10), mantissa = UInt16(generator.next() % 1024)
                let half = (UInt16(generator.next() % 2) << 15) | (exponent << 10) | mantissa
                w[o] = UInt8(half & 0xff)
                w[o + 1] = UInt8(half >> 8)
                for j in 0..<16 {
                    w[o + 2 + j] = b == 0 ? UInt8(j | (15 - j) << 4) : UInt8(truncatingIfNeeded: generator.next())
                }
            }
        }
        return w
    }

    /// y [tokens, rows] through ck_matmul at the current level, and the activations it used
    /// (int8 quants, block scales) for the independent references.
    private func matmul(_ type: GGMLType, _ w: [UInt8], rows: Int, cols: Int, _ x: [Float], tokens: Int,
                        threads: Int) -> (y: [Float], quants: [Int8], scales: [Float]) {
        let activations = QuantizedActivations()
        var y = [Float](repeating: .nan, count: tokens * rows)
        var quants = [Int8](), scales = [Float]()
        x.withUnsafeBufferPointer { xp in
            var a = activations.quantize(xp.baseAddress!, tokens: tokens, cols: cols)
            quants = Array(UnsafeBufferPointer(start: a.qs, count: tokens * cols))
            scales = Array(UnsafeBufferPointer(start: a.d, count: tokens * cols / 32))
            w.withUnsafeBytes { wp in
                y.withUnsafeMutableBufferPointer { yp in
                    ck_matmul(LinearKernels.integerKernelType(type)!, wp.baseAddress!, type.rowByteCount(cols)!,
                              Int32(rows), &a, yp.baseAddress!, rows, Int32(threads))
                }
            }
        }
        return (y, quants, scales)
    }

    /// Per output, the float rounding scale of the fast paths: sum over blocks of |d_w d_x| times
    /// (sum |w_j q_j| + offset |sum q_j|). The 512-bit kernels add an unsigned offset (128 for IQ4_NL,
    /// 8 for Q4_0) to the weights and subtract offset * block sum inside each block's int32 lanes,
    /// which are converted to float before the blocks are added, so those lanes carry that size.
    private func roundingScale(_ type: GGMLType, _ w: [UInt8], rows: Int, cols: Int, quants: [Int8], scales: [Float],
                               tokens: Int) throws -> [Float] {
        let dense = try w.withUnsafeBytes { try dequantize(type, $0, count: rows * cols) }
        let blocks = cols / 32, offset: Float = type == .iq4_nl ? 128 : 8
        var scale = [Float](repeating: 0, count: tokens * rows)
        for t in 0..<tokens {
            for r in 0..<rows {
                var total: Float = 0
                for b in 0..<blocks {
                    var products: Float = 0, sum: Float = 0
                    for j in 0..<32 {
                        let q = Float(quants[t * cols + b * 32 + j])
                        products += abs(dense[r * cols + b * 32 + j]) * abs(q)
                        sum += q
                    }
                    let wScale = abs(Float(Float16(bitPattern: UInt16(w[(r * blocks + b) * 18]) | UInt16(w[(r * blocks + b) * 18 + 1]) << 8)))
                    total += scales[t * blocks + b] * (products + offset * wScale * abs(sum))
                }
                scale[t * rows + r] = total
            }
        }
        return scale
    }

    /// Every level and thread count against plain C: row counts around the four-row groups and the
    /// GEMM's 16-row tiles, token counts 1...9 (the GEMM's 8-token tiles and the four-token kernels
    /// with every remainder), block counts with every remainder mod 4, and products large enough to
    /// be split over threads in chunks of 16 or 64 rows.
    func testEveryLevelAgreesWithPlainCOnRawBlocks() throws {
        var shapes: [(rows: Int, blocks: Int, tokens: Int)] = []
        for tokens in 1...9 {
            for (rows, blocks) in [(1, 1), (2, 3), (3, 4), (4, 5), (5, 2), (6, 7), (7, 8), (9, 6), (17, 3)] {
                shapes.append((rows, blocks, tokens))
            }
        }
        shapes += [(130, 16, 1), (257, 8, 1), (67, 32, 2), (130, 17, 3), (70, 12, 5), (33, 64, 9), (65, 176, 1)]
        for type in [GGMLType.iq4_nl, .q4_0] {
            for (rows, blocks, tokens) in shapes {
                let cols = blocks * 32
                let w = rawRows(rows: rows, blocks: blocks)
                let x = (0..<tokens * cols).map { _ in generator.nextFloat() * 4 }
                ck_set_level(Int32(CK_LEVEL_SCALAR))
                let (reference, quants, scales) = matmul(type, w, rows: rows, cols: cols, x, tokens: tokens, threads: 1)
                XCTAssertFalse(reference.contains { !$0.isFinite })
                let rounding = try roundingScale(type, w, rows: rows, cols: cols, quants: quants, scales: scales, tokens: tokens)
                for level in Int32(CK_LEVEL_SCALAR)...ck_best_level() {
                    XCTAssertEqual(ck_set_level(level), level)
                    for threads in [1, 2, 3] {
                        let y = matmul(type, w, rows: rows, cols: cols, x, tokens: tokens, threads: threads).y
                        for i in y.indices {
                            // Integer block sums are exact on every path; only f32 accumulation differs.
                            XCTAssertEqual(y[i], reference[i], accuracy: 2e-6 * rounding[i],
                                           "\(type) level \(level) threads \(threads) \(rows)x\(cols)x\(tokens) [\(i)]")
                        }
                    }
                }
            }
        }
    }

    /// Plain C against dequantizeRow (Quantization's codec, with its own table) times the dequantized
    /// int8 activations, summed in f32. Bound: the dot's recursive f32 summation of `cols` terms errs
    /// by at most cols * 2^-24 * sum |w_j x_j| (plus the block products' own rounding, a few ulp of
    /// the same sum); the C level's block sums are exact integers.
    func testPlainCMatchesDequantizeThenDot() throws {
        for (rows, blocks, tokens) in [(5, 1, 1), (9, 7, 3), (33, 64, 2), (4, 176, 1)] {
            let cols = blocks * 32
            let w = rawRows(rows: rows, blocks: blocks)
            let x = (0..<tokens * cols).map { _ in generator.nextFloat() * 4 }
            ck_set_level(Int32(CK_LEVEL_SCALAR))
            let (y, quants, scales) = matmul(.iq4_nl, w, rows: rows, cols: cols, x, tokens: tokens, threads: 1)
            let rowBytes = GGMLType.iq4_nl.rowByteCount(cols)!
            var dense = [Float](repeating: 0, count: cols)
            for r in 0..<rows {
                w.withUnsafeBytes { wp in
                    dense.withUnsafeMutableBufferPointer { dequantizeRow(.iq4_nl, wp.baseAddress! + r * rowBytes, count: cols, into: $0.baseAddress!) }
                }
                for t in 0..<tokens {
                    var dot: Float = 0, magnitude: Float = 0
                    for j in 0..<cols {
                        let xj = scales[t * blocks + j / 32] * Float(quants[t * cols + j])
                        dot += dense[j] * xj
                        magnitude += abs(dense[j] * xj)
                    }
                    let bound = (Float(cols) + 4) * Float.ulpOfOne / 2 * magnitude
                    XCTAssertEqual(y[t * rows + r], dot, accuracy: bound, "\(rows)x\(cols)x\(tokens) t\(t) r\(r)")
                }
            }
            // The table itself, independently: a block of scale 1 whose nibbles count 0...15 up (low) and down (high).
            var block = [UInt8](repeating: 0, count: 18)
            block[1] = 0x3c                                  // f16 1.0
            for j in 0..<16 { block[2 + j] = UInt8(j | (15 - j) << 4) }
            let values = try block.withUnsafeBytes { try dequantize(.iq4_nl, $0, count: 32) }
            XCTAssertEqual(values, (0..<16).map { Self.iq4Values[$0] } + (0..<16).map { Self.iq4Values[15 - $0] })
        }
    }

    /// LinearKernels' grouped call (q/k/v, gate/up) gives each matrix exactly what its own call gives:
    /// the same kernels see the same quantized input and the same 64/16-row chunks from each
    /// matrix's first row. Matrices of different row counts, decode and prefill, one and two threads,
    /// and a float type (which takes the per-matrix path).
    func testGroupedProductsEqualSeparateProducts() {
        let cols = 256
        for type in [GGMLType.iq4_nl, .q4_0, .q8_0, .f16] {
            let shapes = [130, 67, 200]
            let ws: [WeightTensor] = shapes.map { rows in
                let values = (0..<rows * cols).map { _ in generator.nextFloat() }
                let bytes = try! quantize(type, values)
                let owned = bytes.withUnsafeBytes { OwnedBytes(copying: $0) }
                return WeightTensor(type: type, shape: [rows, cols], bytes: owned.bytes, owner: owned)
            }
            for tokens in [1, 5] {
                let x = (0..<tokens * cols).map { _ in generator.nextFloat() * 2 }
                for threads in [1, 2] {
                    let kernels = LinearKernels(maxColumns: cols, threads: threads)
                    var separate = shapes.map { [Float](repeating: .nan, count: tokens * $0) }
                    var grouped = separate
                    x.withUnsafeBufferPointer { xp in
                        for i in ws.indices {
                            separate[i].withUnsafeMutableBufferPointer { kernels.linear(ws[i], xp.baseAddress!, tokens: tokens, into: $0.baseAddress!) }
                        }
                        let outputs = grouped.indices.map { i in UnsafeMutablePointer<Float>.allocate(capacity: tokens * shapes[i]) }
                        defer { outputs.forEach { $0.deallocate() } }
                        kernels.linear(ws, xp.baseAddress!, tokens: tokens, into: outputs)
                        for i in grouped.indices { grouped[i] = Array(UnsafeBufferPointer(start: outputs[i], count: tokens * shapes[i])) }
                    }
                    XCTAssertEqual(grouped, separate, "\(type) tokens \(tokens) threads \(threads)")
                    XCTAssertFalse(grouped.joined().contains { $0.isNaN })
                }
            }
        }
    }

    /// The activation quantizer's SIMD path (every level from AVX2 up) gives the plain path's bytes
    /// exactly: random blocks over many magnitudes, exact halves (round half away from zero), zero,
    /// infinite and NaN blocks.
    func testActivationQuantizationIsIdenticalOnEveryLevel() {
        let cols = 1024, tokens = 3
        var x = (0..<tokens * cols).map { i -> Float in
            let v = generator.nextFloat()
            switch i / 32 % 5 {
            case 0: return v * 3
            case 1: return v * 1e-30
            case 2: return v * 1e30
            default: return Float(Int(generator.next() % 255) - 127) / 2     // many exact .5 quotients
            }
        }
        x[32 * 4] = 127                                 // block 4: d = 1, quotients are the values
        for j in 1..<32 { x[32 * 4 + j] = Float(j - 16) + 0.5 }
        for j in 0..<32 { x[32 * 6 + j] = 0 }
        x[32 * 7 + 3] = .infinity
        for j in 0..<32 { x[32 * 8 + j] = -.infinity }
        x[32 * 9 + 5] = .nan
        x[32 * 10] = .nan
        func quantized(level: Int32) -> ([Int8], [Float], [Int32]) {
            ck_set_level(level)
            let activations = QuantizedActivations()
            return x.withUnsafeBufferPointer { xp in
                let a = activations.quantize(xp.baseAddress!, tokens: tokens, cols: cols)
                let n = tokens * cols
                return (Array(UnsafeBufferPointer(start: a.qs, count: n)), Array(UnsafeBufferPointer(start: a.d, count: n / 32)),
                        Array(UnsafeBufferPointer(start: a.sums, count: n / 32)))
            }
        }
        let plain = quantized(level: Int32(CK_LEVEL_SCALAR))
        XCTAssertEqual(plain.0[32 * 4 ..< 32 * 4 + 3], [127, -15, -14])   // 127, -14.5, -13.5 away from zero
        for level in Int32(CK_LEVEL_SCALAR)...ck_best_level() {
            let fast = quantized(level: level)
            XCTAssertEqual(fast.0, plain.0, "level \(level)")
            XCTAssertEqual(fast.1.map(\.bitPattern), plain.1.map(\.bitPattern), "level \(level)")
            XCTAssertEqual(fast.2, plain.2, "level \(level)")
        }
    }

    /// The quantized fixture model on every level and thread count, prefill (the prompt) and a
    /// one-token forward (decode's kernels): close to the PyTorch reference and to the first level.
    /// Levels differ in float summation order only; a last-bit change can move an activation across
    /// an int8 rounding boundary in a later layer, hence 0.15 and not 1e-6 (as for Q8_0 and Q4_0).
    func testIQ4ModelAgreesOnEveryKernelLevel() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let parity = try ReferenceParity(fixture: "ouro-trained-s")
        let prompt = parity.prompts[0]
        let golden = try parity.reference.floats(prompt + ".final_logits")
        let path = folder + "/trained-iq4_nl.gguf"
        try GGUFBuilder.write(fixture: "ouro-trained-s", matrixType: .iq4_nl, to: path)
        let weights = try OuroWeights.load(gguf: path)
        let tokens = try parity.tokens(prompt)
        var first: [Float]?, firstSingle: [Float]?
        for level in Int32(CK_LEVEL_SCALAR)...ck_best_level() {
            ck_set_level(level)
            // Two threads on the best level only: the split is the same on every level, and the plain
            // C level is slow in a debug build.
            for threads in level == ck_best_level() ? [1, 2] : [1] {
                let runner = OuroRunner(weights: weights, threads: threads)
                let ours = try runner.forward(tokens: tokens).logits(.lastStep)
                XCTAssertLessThan(ReferenceParity.maxAbsDiff(ours, golden, "iq4_nl level \(level)"), 2.0,
                                  "level \(level) threads \(threads)")
                let single = try runner.forward(tokens: [tokens[0]]).logits(.lastStep)
                if let first, let firstSingle {
                    XCTAssertLessThan(ReferenceParity.maxAbsDiff(ours, first, "levels"), 0.15, "level \(level) threads \(threads)")
                    XCTAssertLessThan(ReferenceParity.maxAbsDiff(single, firstSingle, "levels"), 0.15, "level \(level) threads \(threads)")
                } else {
                    first = ours
                    firstSingle = single
                }
            }
        }
    }
}
