import CKernels
import Foundation
import OuroTestSupport
import Quantization
import XCTest
@testable import OuroModel

/// The Q4_K / Q6_K integer kernels: every instruction-set level against the plain C level on raw
/// blocks covering every code value, and the plain C level against an independent f32
/// dequantize-then-dot (Quantization's codecs) within the activation quantization's error bound.
final class CKernelsKQuantTests: XCTestCase {
    private var generator = SplitMix(seed: 23)
    private var kernelCheck: SuperBlockKernelCheck {
        SuperBlockKernelCheck(rawBlocks: { self.rawBlocks($0, count: $1) },
                              termMagnitudes: { try self.termMagnitudes($0, $1, rows: $2, cols: $3) },
                              random: { self.generator.nextFloat() })
    }

    override func tearDown() {
        ck_set_level(ck_best_level())
        super.tearDown()
    }

    private func randomHalf(exponents: ClosedRange<UInt16>, signed: Bool) -> UInt16 {
        let span = UInt64(exponents.upperBound - exponents.lowerBound + 1)
        let exponent = exponents.lowerBound + UInt16(generator.next() % span), mantissa = UInt16(generator.next() % 1024)
        let sign: UInt16 = signed ? UInt16(generator.next() % 2) << 15 : 0
        return sign | exponent << 10 | mantissa
    }

    /// `count` raw super-blocks: random f16 scales (either sign, magnitudes 2^-8 ..< 2^2, one in 16 a
    /// subnormal) and random scale/quant bytes; the quant bytes (and Q6_K group scales) of every other
    /// block run through all byte values so that every code occurs in every position class.
    private func rawBlocks(_ type: GGMLType, count: Int) -> [UInt8] {
        let size = type.bytesPerBlock
        var w = [UInt8](repeating: 0, count: count * size)
        func half() -> UInt16 {
            generator.next() % 16 == 0 ? randomHalf(exponents: 0...0, signed: true) : randomHalf(exponents: 7...16, signed: true)
        }
        for b in 0..<count {
            let o = b * size
            for j in 0..<size { w[o + j] = UInt8(truncatingIfNeeded: generator.next()) }
            let sweep = b % 2 == 1
            if type == .q4_K {
                for (k, h) in [half(), half()].enumerated() {
                    w[o + 2 * k] = UInt8(h & 0xff)
                    w[o + 2 * k + 1] = UInt8(h >> 8)
                }
                if sweep { for j in 0..<128 { w[o + 16 + j] = UInt8(truncatingIfNeeded: 2 * j + b) } }
            } else {
                let h = half()
                w[o + 208] = UInt8(h & 0xff)
                w[o + 209] = UInt8(h >> 8)
                if sweep {
                    for j in 0..<192 { w[o + j] = UInt8(truncatingIfNeeded: 3 * j + b) }
                    for g in 0..<16 { w[o + 192 + g] = UInt8(truncatingIfNeeded: b / 2 * 16 + g) }
                }
            }
        }
        return w
    }

    /// Q4_K's 6-bit scale and min of sub-block j, decoded from the layout description in BlockQ4_K.
    private func q4kScaleMin(_ block: ArraySlice<UInt8>, _ j: Int) -> (Int, Int) {
        let q = Array(block.dropFirst(4).prefix(12))
        if j < 4 { return (Int(q[j] & 63), Int(q[j + 4] & 63)) }
        return (Int(q[j + 4] & 0xf) | Int(q[j - 4] >> 6) << 4, Int(q[j + 4] >> 4) | Int(q[j] >> 6) << 4)
    }

    /// Per element, the largest weight term a kernel may round: |dequantized| plus the offset part
    /// the fast paths add separately (dmin·m for Q4_K, 32·|d·sc| for Q6_K).
    private func termMagnitudes(_ type: GGMLType, _ w: [UInt8], rows: Int, cols: Int) throws -> [Float] {
        let dense = try w.withUnsafeBytes { try dequantize(type, $0, count: rows * cols) }
        var out = dense.map(abs)
        let size = type.bytesPerBlock
        for b in 0..<rows * cols / 256 {
            let block = w[b * size..<(b + 1) * size]
            for e in 0..<256 {
                let offset: Float
                if type == .q4_K {
                    let dmin = Float16Bits.toFloat(UInt16(block[block.startIndex + 2]) | UInt16(block[block.startIndex + 3]) << 8)
                    offset = abs(dmin) * Float(q4kScaleMin(block, e / 32).1)
                } else {
                    let d = Float16Bits.toFloat(UInt16(block[block.startIndex + 208]) | UInt16(block[block.startIndex + 209]) << 8)
                    offset = 32 * abs(d * Float(Int8(bitPattern: block[block.startIndex + 192 + e / 16])))
                }
                out[b * 256 + e] += 2 * offset
            }
        }
        return out
    }

    func testRawBlocksCoverEveryCode() {
        let w4 = rawBlocks(.q4_K, count: 64)
        var scales = Set<Int>(), mins = Set<Int>(), nibbles = Set<UInt8>()
        for b in 0..<64 {
            let block = w4[b * 144..<(b + 1) * 144]
            for j in 0..<8 { let (s, m) = q4kScaleMin(block, j); scales.insert(s); mins.insert(m) }
            for j in 16..<144 { nibbles.insert(block[block.startIndex + j] & 15); nibbles.insert(block[block.startIndex + j] >> 4) }
        }
        XCTAssertEqual(scales.count, 64)
        XCTAssertEqual(mins.count, 64)
        XCTAssertEqual(nibbles.count, 16)
        let w6 = rawBlocks(.q6_K, count: 64)
        let dense = w6.withUnsafeBytes { try! dequantize(.q6_K, $0, count: 64 * 256) }
        var codes = Set<Int>(), groupScales = Set<Int8>()
        for b in 0..<64 {
            let d = Float16Bits.toFloat(UInt16(w6[b * 210 + 208]) | UInt16(w6[b * 210 + 209]) << 8)
            for e in 0..<256 {
                let sc = Int8(bitPattern: w6[b * 210 + 192 + e / 16])
                groupScales.insert(sc)
                if d * Float(sc) != 0 { codes.insert(Int((dense[b * 256 + e] / (d * Float(sc))).rounded()) + 32) }
            }
        }
        XCTAssertEqual(codes, Set(0..<64))
        XCTAssertEqual(groupScales.count, 256)
    }

    /// Every level, one to three threads, against plain C: row counts around the GEMM tile (16) and
    /// the thread chunks (16 prefill, 64 decode), 1, 2, 3, 8 and 22 super-blocks, tokens 1...9.
    func testEveryKernelLevelAgreesWithPlainCOnRawBlocks() throws {
        try kernelCheck.everyLevelAgreesWithPlainC([GGMLType.q4_K, .q6_K])
    }

    /// The prefill GEMM against plain C: tokens 4...17, row remainders, one to three threads, and
    /// one activations buffer re-quantized between calls.
    func testPrefillGemmAgreesWithPlainC() throws {
        try kernelCheck.gemmAgreesWithPlainC([GGMLType.q4_K, .q6_K])
    }

    /// Plain C against dot(dequantizeRow(w), x) in f32: the only difference is the activations'
    /// int8 rounding, |x - d·q| <= d/2 with d = max|x| / 127 per block of 32, so
    /// |y - y_f32| <= Σ |w_e| d_b(e) / 2 (plus f32 rounding, 1e-5 of Σ |w x|).
    func testPlainCMatchesDequantizedFloatDot() throws {
        try kernelCheck.plainCMatchesDequantizedFloatDot([GGMLType.q4_K, .q6_K])
    }
}
