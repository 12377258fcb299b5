import XCTest
@testable import Quantization

final class GGMLTypeTests: XCTestCase {
    // Layout facts from ggml.h / gguf-py constants.py (GGML_QUANT_SIZES), written out independently.
    func testTableMatchesGGML() {
        let expected: [(GGMLType, UInt32, String, Int, Int)] = [
            (.f32, 0, "F32", 1, 4), (.f16, 1, "F16", 1, 2), (.q4_0, 2, "Q4_0", 32, 18),
            (.q8_0, 8, "Q8_0", 32, 34), (.q4_K, 12, "Q4_K", 256, 144), (.q6_K, 14, "Q6_K", 256, 210),
            (.iq4_nl, 20, "IQ4_NL", 32, 18), (.bf16, 30, "BF16", 1, 2),
            (.q3_K, 11, "Q3_K", 256, 110), (.q5_K, 13, "Q5_K", 256, 176), (.iq4_xs, 23, "IQ4_XS", 256, 136),
        ]
        XCTAssertEqual(GGMLType.allCases.count, expected.count)
        for (type, id, name, block, bytes) in expected {
            XCTAssertEqual(type.rawValue, id)
            XCTAssertEqual(type.name, name)
            XCTAssertEqual(type.blockSize, block)
            XCTAssertEqual(type.bytesPerBlock, bytes)
            XCTAssertEqual(GGMLType(id: id), type)
            XCTAssertEqual(GGMLType(name: name.lowercased()), type)
        }
        XCTAssertNil(GGMLType(id: 3))
        XCTAssertNil(GGMLType(id: 22))
        XCTAssertNil(GGMLType(name: "Q5_1"))
    }

    func testRowByteCountRequiresWholeBlocks() {
        XCTAssertEqual(GGMLType.q8_0.rowByteCount(64), 68)
        XCTAssertEqual(GGMLType.q4_0.rowByteCount(4096), 128 * 18)
        XCTAssertEqual(GGMLType.f16.rowByteCount(3), 6)
        XCTAssertEqual(GGMLType.q8_0.rowByteCount(0), 0)
        XCTAssertNil(GGMLType.q8_0.rowByteCount(33))
        XCTAssertNil(GGMLType.q4_0.rowByteCount(-32))
        XCTAssertNil(GGMLType.f32.rowByteCount(Int.max))
        // ffn_down rows of the trained fixture (704) are whole 32-blocks but not 256-super-blocks.
        XCTAssertEqual(GGMLType.iq4_nl.rowByteCount(704), 22 * 18)
        XCTAssertNil(GGMLType.q4_K.rowByteCount(704))
        XCTAssertEqual(GGMLType.q6_K.rowByteCount(768), 3 * 210)
    }

    func testBitsPerWeight() {
        XCTAssertEqual(GGMLType.q4_0.bitsPerWeight, 4.5)
        XCTAssertEqual(GGMLType.q4_K.bitsPerWeight, 4.5)
        XCTAssertEqual(GGMLType.iq4_nl.bitsPerWeight, 4.5)
        XCTAssertEqual(GGMLType.q6_K.bitsPerWeight, 6.5625)
        XCTAssertEqual(GGMLType.q3_K.bitsPerWeight, 3.4375)
        XCTAssertEqual(GGMLType.iq4_xs.bitsPerWeight, 4.25)
        XCTAssertEqual(GGMLType.q5_K.bitsPerWeight, 5.5)
        XCTAssertEqual(GGMLType.q8_0.bitsPerWeight, 8.5)
        XCTAssertEqual(GGMLType.f16.bitsPerWeight, 16)
    }

    func testCheckedRowByteCountThrowsOneLineError() {
        XCTAssertThrowsError(try GGMLType.q4_0.checkedRowByteCount(48)) { error in
            XCTAssertEqual(error as? QuantizationError, .notWholeBlocks(type: .q4_0, count: 48))
            XCTAssertEqual("\(error)", "48 elements are not a whole number of Q4_0 blocks of 32")
        }
        XCTAssertThrowsError(try GGMLType.f32.checkedRowByteCount(Int.max / 2)) { error in
            XCTAssertEqual(error as? QuantizationError, .sizeOverflow(type: .f32, count: Int.max / 2))
        }
    }

    func testArrayCodecsRejectBadCounts() {
        XCTAssertThrowsError(try quantize(.q8_0, [Float](repeating: 1, count: 33)))
        XCTAssertThrowsError(try [UInt8](repeating: 0, count: 33).withUnsafeBytes { try dequantize(.q8_0, $0, count: 32) }) { error in
            XCTAssertEqual(error as? QuantizationError, .byteCountMismatch(type: .q8_0, count: 32, expected: 34, actual: 33))
        }
    }
}
