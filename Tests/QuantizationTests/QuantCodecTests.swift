import XCTest
@testable import Quantization

final class QuantCodecTests: XCTestCase {
    /// Rows of mixed scales, one block each, plus zeros.
    private func randomBlocks(_ count: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        var out: [Float] = []
        for b in 0..<count {
            let scale = Float(pow(10, Double.random(in: -6...4, using: &rng)))
            for _ in 0..<32 { out.append(b % 7 == 0 ? 0 : Float.random(in: -1...1, using: &rng) * scale) }
        }
        return out
    }

    func testQ4_0PacksLowNibbleFirstHalfHighNibbleSecondHalf() throws {
        // Hand-built: the first value -8 is the largest magnitude, so d = -8 / -8 = 1 and q = trunc(x + 8.5).
        let x: [Float] = (0..<32).map { Float($0 % 16) - 8 }
        let bytes = try quantize(.q4_0, x)
        XCTAssertEqual(bytes.count, 18)
        XCTAssertEqual(Array(bytes[0..<2]), [0x00, 0x3c])                // f16 1.0, little-endian
        XCTAssertEqual(Array(bytes[2...]), (0..<16).map { UInt8($0 | $0 << 4) })
        XCTAssertEqual(try bytes.withUnsafeBytes { try dequantize(.q4_0, $0, count: 32) }, x)
    }

    func testQ8_0HandBuiltBlock() throws {
        // amax = 127 gives d = 1 exactly; 2.5 and -2.5 round away from zero.
        var x = [Float](repeating: 0, count: 32)
        x[0] = 127; x[1] = 2.5; x[2] = -2.5; x[3] = 0.49; x[31] = -126.5
        let bytes = try quantize(.q8_0, x)
        XCTAssertEqual(Array(bytes[0..<2]), [0x00, 0x3c])
        XCTAssertEqual(Int8(bitPattern: bytes[2]), 127)
        XCTAssertEqual(Int8(bitPattern: bytes[3]), 3)
        XCTAssertEqual(Int8(bitPattern: bytes[4]), -3)
        XCTAssertEqual(Int8(bitPattern: bytes[5]), 0)
        XCTAssertEqual(Int8(bitPattern: bytes[33]), -127)
    }

    func testQ8_0RoundTripErrorWithinHalfAStepPerBlock() throws {
        let x = randomBlocks(400, seed: 1)
        let back = try quantize(.q8_0, x).withUnsafeBytes { try dequantize(.q8_0, $0, count: x.count) }
        for b in 0..<x.count / 32 {
            let block = x[b * 32..<(b + 1) * 32]
            let d = block.map(abs).max()! / 127
            let dh = Float16Bits.toFloat(Float16Bits.from(d))
            let bound = d / 2 + 127 * abs(d - dh) + d * 1e-5
            for i in block.indices {
                XCTAssertLessThanOrEqual(abs(x[i] - back[i]), bound, "block \(b) element \(i)")
            }
        }
    }

    func testQ4_0RoundTripErrorWithinOneStepPerBlock() throws {
        let x = randomBlocks(400, seed: 2)
        let back = try quantize(.q4_0, x).withUnsafeBytes { try dequantize(.q4_0, $0, count: x.count) }
        for b in 0..<x.count / 32 {
            let block = x[b * 32..<(b + 1) * 32]
            let max = block.max { abs($0) < abs($1) }!
            let d = abs(max) / 8
            let dh = Float16Bits.toFloat(Float16Bits.from(d))
            for i in block.indices {
                // Half a step, except where x*id rounds past +7 (q would be 16, capped at 15): one step.
                let scaled = d == 0 ? 0 : x[i] / -(max / 8)
                let steps: Float = scaled >= 7.5 ? 1 : 0.5
                let bound = steps * d + 8 * abs(d - dh) + d * 1e-5
                XCTAssertLessThanOrEqual(abs(x[i] - back[i]), bound, "block \(b) element \(i)")
            }
        }
    }

    func testNonFiniteInputsDoNotTrap() throws {
        var x = [Float](repeating: 1, count: 64)
        x[3] = .nan; x[40] = .infinity
        for type in GGMLType.allCases {
            let bytes = try quantize(type, x)
            _ = try bytes.withUnsafeBytes { try dequantize(type, $0, count: 64) }
        }
    }

    func testFastDotMatchesScalarReferenceForEveryType() throws {
        var rng = SplitMix64(seed: 3)
        for type in GGMLType.allCases {
            for count in [32, 64, 96, 1024, 4096] + (type.isQuantized ? [] : [1, 7, 33, 1000]) {
                let w = (0..<count).map { _ in Float.random(in: -2...2, using: &rng) }
                let x = (0..<count).map { _ in Float.random(in: -2...2, using: &rng) }
                let row = try quantize(type, w)
                let weights = try row.withUnsafeBytes { try dequantize(type, $0, count: count) }
                let magnitude = zip(weights, x).reduce(0.0) { $0 + abs(Double($1.0) * Double($1.1)) }
                let exact = zip(weights, x).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
                let (fast, reference) = row.withUnsafeBytes { r in
                    x.withUnsafeBufferPointer { xp in
                        (dotRow(type, r.baseAddress!, xp.baseAddress!, count: count),
                         referenceDotRow(type, r.baseAddress!, xp.baseAddress!, count: count))
                    }
                }
                let tolerance = 1e-5 * magnitude + 1e-6
                XCTAssertEqual(Double(fast), exact, accuracy: tolerance, "\(type) count \(count): fast")
                XCTAssertEqual(Double(reference), exact, accuracy: tolerance, "\(type) count \(count): reference")
                XCTAssertEqual(Double(fast), Double(reference), accuracy: tolerance, "\(type) count \(count)")
            }
        }
    }

    func testFloatRowsStoreRepresentableValuesExactly() throws {
        let common: [Float] = [0, -0.0, 1, -2.5, 0.375, 1024, -0x1p-24, 0x1p-14]
        let cases: [(GGMLType, [Float])] = [
            (.f32, common + [0.1, 3.4e38, 0x1p-140]),
            (.f16, common + [65504, 0x1.ffcp0, 0x1p-24]),              // f16: 10 mantissa bits, subnormals to 2^-24
            (.bf16, common + [0x1.fep127, 0x1p-126, 0x1p-133]),   // bf16: 7 bits, the float exponent range
        ]
        for (type, x) in cases {
            let back = try quantize(type, x).withUnsafeBytes { try dequantize(type, $0, count: x.count) }
            XCTAssertEqual(back.map(\.bitPattern), x.map(\.bitPattern), "\(type)")
        }
    }
}

/// Deterministic generator so failures reproduce.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
