import XCTest
@testable import Quantization

final class HalfFloatTests: XCTestCase {
    func testEveryHalfExpandsLikeTheReferenceAndRoundTripsExactly() {
        for h in UInt16.min...UInt16.max {
            let f = Float16Bits.toFloat(h)
            let r = Float16Bits.referenceToFloat(h)
            if r.isNaN {
                XCTAssertTrue(f.isNaN, "half \(h)")
                XCTAssertTrue(Float16Bits.toFloat(Float16Bits.from(f)).isNaN)
            } else {
                XCTAssertEqual(f.bitPattern, r.bitPattern, "half \(h)")
                XCTAssertEqual(Float16Bits.from(f), h, "half \(h) does not round trip")
                XCTAssertEqual(Float16Bits.referenceFrom(f), h)
            }
        }
    }

    func testHalfRoundingEdgesAreNearestEven() {
        let cases: [(Float, UInt16)] = [
            (1, 0x3c00), (-2, 0xc000), (65504, 0x7bff), (65519.996, 0x7bff), (65520, 0x7c00), (1e9, 0x7c00),
            (-.infinity, 0xfc00), (0x1p-24, 0x0001), (0x1p-25, 0x0000), (0x1.8p-25, 0x0001), (0x1p-26, 0x0000),
            (0x1.ffcp-15, 0x0400),                 // largest subnormal + half ulp rounds up into the normals
            (1 + 0x1p-11, 0x3c00), (1 + 0x3p-11, 0x3c02), (1 + 0x1.8p-11, 0x3c01), (-0.0, 0x8000),
        ]
        for (x, h) in cases {
            XCTAssertEqual(Float16Bits.from(x), h, "\(x)")
            XCTAssertEqual(Float16Bits.referenceFrom(x), h, "\(x) (reference)")
        }
        XCTAssertTrue(Float16Bits.toFloat(Float16Bits.from(.nan)).isNaN)
        XCTAssertTrue(Float16Bits.toFloat(Float16Bits.referenceFrom(Float(bitPattern: 0x7f80_0001))).isNaN)
    }

    func testFastHalfConversionMatchesReferenceOnRandomFloats() {
        var rng = SystemRandomNumberGenerator()
        var source = (0..<100_000).map { _ in Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &rng)) }
        source += (0..<100_000).map { _ in Float.random(in: -70000...70000) * Float.random(in: 0...1e-4) }
        var bulk = [UInt16](repeating: 0, count: source.count)
        Float16Bits.convert(source, count: source.count, into: &bulk)
        for (i, x) in source.enumerated() {
            let expected = Float16Bits.referenceFrom(x)
            if x.isNaN {
                XCTAssertTrue(Float16Bits.referenceToFloat(bulk[i]).isNaN)
            } else if bulk[i] != expected || Float16Bits.from(x) != expected {
                XCTFail("\(x): fast \(bulk[i]) / \(Float16Bits.from(x)), reference \(expected)")
                return
            }
        }
        var back = [Float](repeating: 0, count: bulk.count)
        Float16Bits.expand(bulk, count: bulk.count, into: &back)
        for i in 0..<bulk.count where !back[i].isNaN {
            XCTAssertEqual(back[i], Float16Bits.referenceToFloat(bulk[i]))
        }
    }

    func testEveryBFloat16RoundTripsExactly() {
        for h in UInt16.min...UInt16.max {
            let f = BFloat16Bits.toFloat(h)
            XCTAssertEqual(f.bitPattern, UInt32(h) << 16)
            if f.isNaN {
                XCTAssertTrue(BFloat16Bits.toFloat(BFloat16Bits.from(f)).isNaN)
            } else {
                XCTAssertEqual(BFloat16Bits.from(f), h)
            }
        }
    }

    func testBFloat16RoundsToNearestEvenAndKeepsNaN() {
        XCTAssertEqual(BFloat16Bits.from(Float(bitPattern: 0x3f80_8000)), 0x3f80)   // tie, even stays
        XCTAssertEqual(BFloat16Bits.from(Float(bitPattern: 0x3f81_8000)), 0x3f82)   // tie, odd goes up
        XCTAssertEqual(BFloat16Bits.from(Float(bitPattern: 0x3f80_8001)), 0x3f81)
        XCTAssertEqual(BFloat16Bits.from(Float(bitPattern: 0x3f80_7fff)), 0x3f80)
        XCTAssertEqual(BFloat16Bits.from(.greatestFiniteMagnitude), 0x7f80)         // overflows to inf, like torch
        // A NaN whose payload sits only in the low bits must not round into inf.
        XCTAssertEqual(BFloat16Bits.from(Float(bitPattern: 0x7f80_0001)), 0x7fc0)
        XCTAssertEqual(BFloat16Bits.from(Float(bitPattern: 0xffff_ffff)), 0xffff)
        XCTAssertTrue(BFloat16Bits.toFloat(BFloat16Bits.from(.nan)).isNaN)
    }
}
