import OuroIO
import XCTest

final class XXH64Tests: XCTestCase {
    /// Expected values from the reference implementation (python `xxhash.xxh64(data).intdigest()`).
    func testMatchesTheReferenceImplementation() {
        let cases: [([UInt8], UInt64)] = [
            ([], 0xEF46_DB37_51D8_E999),
            (Array("a".utf8), 0xD24E_C4F1_A98C_6E5B),
            (Array("abc".utf8), 0x44BC_2CF5_AD77_0999),
            (Array((0..<768).map { UInt8($0 % 256) }), 0x8E03_C838_C596_036F),
            ([UInt8](repeating: UInt8(ascii: "x"), count: 31), 0x60DD_0D01_083B_99F0),
            ([UInt8](repeating: UInt8(ascii: "y"), count: 32), 0x64DA_1F1D_3495_CE66),
            ([UInt8](repeating: UInt8(ascii: "z"), count: 33), 0xC524_1253_C64E_0268),
        ]
        for (bytes, expected) in cases {
            XCTAssertEqual(XXH64.hash(bytes), expected, "\(bytes.count) bytes")
        }
    }

    func testStreamingInAnyChunksEqualsOneShot() {
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<1000).map { _ in UInt8.random(in: 0...255, using: &rng) }
        let whole = XXH64.hash(bytes)
        for chunk in [1, 3, 7, 31, 32, 33, 100, 999] {
            var h = XXH64()
            var i = 0
            while i < bytes.count {
                let n = min(chunk, bytes.count - i)
                bytes[i..<i + n].withUnsafeBytes { h.update($0) }
                i += n
            }
            XCTAssertEqual(h.digest(), whole, "chunk \(chunk)")
        }
    }
}
