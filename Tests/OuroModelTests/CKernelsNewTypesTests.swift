import CKernels
import Foundation
import OuroTestSupport
import Quantization
import XCTest
@testable import OuroModel

/// The Q3_K / Q5_K / IQ4_XS integer kernels: every instruction-set level against the plain C level
/// on raw blocks covering every code value, and the plain C level against an independent f32
/// dequantize-then-dot (Quantization's codecs, checked bit for bit against gguf-py) within the
/// activation quantization's error bound.
final class CKernelsNewTypesTests: XCTestCase {
    private var generator = SplitMix(seed: 31)
    private var kernelCheck: SuperBlockKernelCheck {
        SuperBlockKernelCheck(rawBlocks: { self.rawBlocks($0, count: $1) },
                              termMagnitudes: { try self.termMagnitudes($0, $1, rows: $2, cols: $3) },
                              random: { self.generator.nextFloat() })
    }
    private let types: [GGMLType] = [.q3_K, .q5_K, .iq4_xs]

    override func tearDown() {
        ck_set_level(ck_best_level())
        super.tearDown()
    }

    /// A random f16: either sign, magnitude 2^-8 ..< 2^2, one in 16 a subnormal.
    private func half() -> UInt16 {
        let subnormal = generator.next() % 16 == 0
        let exponent: UInt16 = subnormal ? 0 : 7 + UInt16(generator.next() % 10)
        return UInt16(generator.next() % 2) << 15 | exponent << 10 | UInt16(generator.next() % 1024)
    }

    /// Offsets of the f16 scales in a block.
    private func halfOffsets(_ type: GGMLType) -> [Int] {
        switch type {
        case .q3_K: return [108]
        case .q5_K: return [0, 2]
        default: return [0]
        }
    }

    /// `count` raw super-blocks: random bytes with random f16 scales; every other block's quant and
    /// scale bytes run through all byte values so that every code occurs in every position class.
    private func rawBlocks(_ type: GGMLType, count: Int) -> [UInt8] {
        let size = type.bytesPerBlock
        var w = [UInt8](repeating: 0, count: count * size)
        let scaleBytes = Set(halfOffsets(type).flatMap { [$0, $0 + 1] })
        for b in 0..<count {
            let o = b * size
            for j in 0..<size { w[o + j] = UInt8(truncatingIfNeeded: generator.next()) }
            if b % 2 == 1 {
                var k = 0
                for j in 0..<size where !scaleBytes.contains(j) {
                    w[o + j] = UInt8(truncatingIfNeeded: 3 * k + 7 * b)
                    k += 1
                }
            }
            for offset in halfOffsets(type) {
                let h = half()
                w[o + offset] = UInt8(h & 0xff)
                w[o + offset + 1] = UInt8(h >> 8)
            }
        }
        return w
    }

    /// The unsigned code of element e and the scale code of its group, read from the layouts as
    /// Docs/QUANTIZATION.md and the codecs describe them.
    private func codes(_ type: GGMLType, _ block: [UInt8]) -> (quants: [Int], scales: [Int]) {
        var quants: [Int] = [], scales: [Int] = []
        switch type {
        case .q3_K:
            for e in 0..<256 {
                let low = Int(block[32 + 32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32)) & 3)
                quants.append(low | Int(block[e % 32] >> (e / 32) & 1) << 2)
            }
            for g in 0..<16 {
                let low = g < 8 ? Int(block[96 + g] & 0xf) : Int(block[96 + g - 8] >> 4)
                scales.append(low | Int(block[96 + 8 + g % 4] >> (2 * (g / 4)) & 3) << 4)
            }
        case .q5_K:
            for e in 0..<256 {
                let p = e / 64, l = e % 32, high = (e % 64) >= 32
                let byte = block[48 + 32 * p + l]
                quants.append(Int(high ? byte >> 4 : byte & 0xf) | Int(block[16 + l] >> (2 * p + (high ? 1 : 0)) & 1) << 4)
            }
            let q = Array(block[4..<16])
            for j in 0..<8 { scales.append(j < 4 ? Int(q[j] & 63) : Int(q[j + 4] & 0xf) | Int(q[j - 4] >> 6) << 4) }
        default:
            for e in 0..<256 {
                let byte = block[8 + 16 * (e / 32) + e % 16]
                quants.append(Int(e % 32 < 16 ? byte & 0xf : byte >> 4))
            }
            let high = Int(block[2]) | Int(block[3]) << 8
            for ib in 0..<8 { scales.append(Int(block[4 + ib / 2] >> (4 * (ib % 2)) & 0xf) | (high >> (2 * ib) & 3) << 4) }
        }
        return (quants, scales)
    }

    func testRawBlocksCoverEveryCode() {
        for type in types {
            let w = rawBlocks(type, count: 64)
            var quants = Set<Int>(), scales = Set<Int>(), positions = Set<Int>()
            for b in 0..<64 {
                let (q, s) = codes(type, Array(w[b * type.bytesPerBlock..<(b + 1) * type.bytesPerBlock]))
                quants.formUnion(q)
                scales.formUnion(s)
                for (e, code) in q.enumerated() where code == 0 || code == q.max() { positions.insert(e) }
            }
            let levels = type == .q3_K ? 8 : type == .q5_K ? 32 : 16
            XCTAssertEqual(quants, Set(0..<levels), "\(type)")
            XCTAssertEqual(scales, Set(0..<64), "\(type)")
        }
    }

    /// Per element, the largest weight term a kernel may round: |dequantized| plus the offset part
    /// the fast paths add separately (dmin·m for Q5_K, 4·|d·sc| for Q3_K, 128·|d·ls| for IQ4_XS).
    private func termMagnitudes(_ type: GGMLType, _ w: [UInt8], rows: Int, cols: Int) throws -> [Float] {
        let dense = try w.withUnsafeBytes { try dequantize(type, $0, count: rows * cols) }
        var out = dense.map(abs)
        let size = type.bytesPerBlock
        func f16(_ block: [UInt8], _ o: Int) -> Float { Float16Bits.toFloat(UInt16(block[o]) | UInt16(block[o + 1]) << 8) }
        for b in 0..<rows * cols / 256 {
            let block = Array(w[b * size..<(b + 1) * size])
            let (_, scales) = codes(type, block)
            for e in 0..<256 {
                let offset: Float
                switch type {
                case .q3_K: offset = 4 * abs(f16(block, 108) * Float(scales[e / 16] - 32))
                case .q5_K:
                    let q = Array(block[4..<16]), j = e / 32
                    let m = j < 4 ? Int(q[j + 4] & 63) : Int(q[j + 4] >> 4) | Int(q[j] >> 6) << 4
                    offset = abs(f16(block, 2)) * Float(m)
                default: offset = 128 * abs(f16(block, 0) * Float(scales[e / 32] - 32))
                }
                out[b * 256 + e] += 2 * offset
            }
        }
        return out
    }

    /// Every level, one and three threads, against plain C: row counts around the thread chunks,
    /// 1, 2, 3, 8 and 22 super-blocks, tokens 1...9 (the 4-token prefill form and its remainders).
    func testEveryKernelLevelAgreesWithPlainCOnRawBlocks() throws {
        try kernelCheck.everyLevelAgreesWithPlainC(types)
    }

    /// The prefill GEMM against plain C: tokens 4...17, row remainders, one to three threads, and
    /// one activations buffer re-quantized between calls.
    func testPrefillGemmAgreesWithPlainC() throws {
        try kernelCheck.gemmAgreesWithPlainC(types)
    }

    /// Plain C against dot(dequantizeRow(w), x) in f32: the only difference is the activations'
    /// int8 rounding, |x - d·q| <= d/2 with d = max|x| / 127 per block of 32, so
    /// |y - y_f32| <= Σ |w_e| d_b(e) / 2 (plus f32 rounding, 1e-5 of Σ |w x|).
    func testPlainCMatchesDequantizedFloatDot() throws {
        try kernelCheck.plainCMatchesDequantizedFloatDot(types)
    }
}
