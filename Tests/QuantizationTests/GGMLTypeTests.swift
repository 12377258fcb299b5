import XCTest
@testable import Quantization

final class GGMLTypeTests: XCTestCase {
    // Layout facts from ggml.h / gguf-py constants.py (GGML_QUANT_SIZES), written out independently.
    func testTableMatchesGGML() {
        let expected: [(GGMLType, UInt32, String, Int, Int)] = [
            (.f32, 0, "F32", 1, 4), (.f16, 1, "F16", 1, 2), (.q4_0, 2, "Q4_0", 32, 18),
            (.q8_0, 8, "Q8_0", 32, 34), (.bf16, 30, "BF16", 1, 2),
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
        XCTAssertNil(GGMLType(name: "Q4_K"))
    }

    func testRowByteCountRequiresWholeBlocks() {
        XCTAssertEqual(GGMLType.q8_0.rowByteCount(64), 68)
        XCTAssertEqual(GGMLType.q4_0.rowByteCount(4096), 128 * 18)
        XCTAssertEqual(GGMLType.f16.rowByteCount(3), 6)
        XCTAssertEqual(GGMLType.q8_0.rowByteCount(0), 0)
        XCTAssertNil(GGMLType.q8_0.rowByteCount(33))
        XCTAssertNil(GGMLType.q4_0.rowByteCount(-32))
        XCTAssertNil(GGMLType.f32.rowByteCount(Int.max))
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
