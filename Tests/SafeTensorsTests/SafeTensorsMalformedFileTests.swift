import Foundation
import XCTest
@testable import SafeTensors

/// One test per rule of the format, each on bytes built here, each asserting the exact error.
final class SafeTensorsMalformedFileTests: XCTestCase {
    private let path = "/data/bad.safetensors"

    private func open(_ bytes: [UInt8]) throws -> SafeTensorsFile {
        try SafeTensorsFile(path: path, bytes: bytes)
    }

    private func rejection(_ header: String, data: [UInt8] = [], file: StaticString = #filePath, line: UInt = #line) -> SafeTensorsError? {
        safeTensorsError({ try open(safetensorsBytes(header: header, data: data)) }, file: file, line: line)
    }

    private func entry(_ name: String, _ dtype: String = "F32", shape: String = "[1]", offsets: String = "[0,4]") -> String {
        #""\#(name)":{"dtype":"\#(dtype)","shape":\#(shape),"data_offsets":\#(offsets)}"#
    }

    // MARK: Framing

    func testRejectsEmptyFileThroughTheMemoryMap() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let empty = dir + "/empty.safetensors"
        try writeFile(empty, [])
        XCTAssertEqual(safeTensorsError { try SafeTensorsFile(path: empty) }, .fileTooSmall(path: empty, size: 0))
    }

    func testRejectsSevenByteFile() {
        XCTAssertEqual(safeTensorsError { try open([2, 0, 0, 0, 0, 0, 0]) }, .fileTooSmall(path: path, size: 7))
    }

    func testRejectsZeroHeaderLengthAsInvalidJSON() {
        guard case .headerNotJSON(path, _)? = safeTensorsError({ try open(safetensorsBytes(header: "")) }) else {
            return XCTFail("expected headerNotJSON")
        }
    }

    func testRejectsHeaderLengthOfTwoToThe63() {
        let bytes = safetensorsBytes(header: "{}", declaredLength: 1 << 63)
        XCTAssertEqual(safeTensorsError { try open(bytes) }, .headerTooLarge(path: path, length: 1 << 63))
    }

    func testRejectsHeaderLengthJustOverTheLimitButNotAtTheLimit() {
        XCTAssertEqual(safeTensorsError { try open(safetensorsBytes(header: "{}", declaredLength: 100_000_001)) },
                       .headerTooLarge(path: path, length: 100_000_001))
        // At the limit the length is allowed, so the next check (bounds) is the one that fails.
        XCTAssertEqual(safeTensorsError { try open(safetensorsBytes(header: "{}", declaredLength: 100_000_000)) },
                       .headerPastEnd(path: path, length: 100_000_000, fileSize: 10))
    }

    func testRejectsHeaderRunningPastTheEndOfFile() {
        XCTAssertEqual(safeTensorsError { try open(safetensorsBytes(header: "{}", declaredLength: 3)) },
                       .headerPastEnd(path: path, length: 3, fileSize: 10))
    }

    func testRejectsHeaderThatIsNotUTF8() {
        for invalid: [UInt8] in [[0x7B, 0xFF, 0x7D], [0x7B, 0xC0, 0x80, 0x7D], [0x7B, 0xED, 0xA0, 0x80, 0x7D], [0x7B, 0xE2, 0x82]] {
            XCTAssertEqual(safeTensorsError { try open(safetensorsBytes(headerBytes: invalid)) }, .headerNotUTF8(path: path), "\(invalid)")
        }
    }

    func testRejectsHeaderThatIsNotJSON() {
        for text in ["{not json}", "{} x", #"{"a":"#, "{,}", #"{"a":01}"#, #"{"a":"\q"}"#, #"{"a":"\ud800"}"#, "{\"a\":\"\t\"}", "   "] {
            guard case .headerNotJSON(path, _)? = rejection(text) else { return XCTFail("expected headerNotJSON for \(text)") }
        }
    }

    func testRejectsDeeplyNestedJSONWithoutExhaustingTheStack() {
        let text = String(repeating: "[", count: 200_000)
        guard case .headerNotJSON(path, _)? = rejection(text) else { return XCTFail("expected headerNotJSON") }
    }

    func testRejectsJSONArrayHeader() {
        XCTAssertEqual(rejection("[]"), .headerNotObject(path: path, found: "an array"))
        XCTAssertEqual(rejection("17"), .headerNotObject(path: path, found: "a number"))
    }

    // MARK: Entries

    func testRejectsMetadataThatIsNotAStringMap() {
        for metadata in [#"{"format":1}"#, #"{"format":null}"#, "[]", #""pt""#] {
            guard case .badMetadata(path, _)? = rejection(#"{"__metadata__":\#(metadata)}"#) else {
                return XCTFail("expected badMetadata for \(metadata)")
            }
        }
    }

    func testRejectsUnknownDTypeNamingTensorAndDType() {
        let error = rejection("{\(entry("w", "F8_E4M3", offsets: "[0,1]"))}", data: [0])
        XCTAssertEqual(error, .unsupportedDType(path: path, tensor: "w", dtype: "F8_E4M3"))
        XCTAssertTrue(error?.description.hasPrefix("\(path): tensor 'w' has dtype 'F8_E4M3'") ?? false, error?.description ?? "")
        XCTAssertEqual(rejection("{\(entry("w", "f32"))}", data: [0, 0, 0, 0]), .unsupportedDType(path: path, tensor: "w", dtype: "f32"))
    }

    func testRejectsEntryThatIsNotAnObjectOrLacksAStringDType() {
        for text in [#"{"w":[1,2]}"#, #"{"w":{"shape":[1],"data_offsets":[0,4]}}"#, #"{"w":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}"#] {
            guard case .badTensorEntry(path, "w", _)? = rejection(text, data: [0, 0, 0, 0]) else {
                return XCTFail("expected badTensorEntry for \(text)")
            }
        }
    }

    func testRejectsNegativeFractionalOrNonNumericShape() {
        for shape in ["[-1]", "[1.5]", "[1.0]", "[1e0]", #"["1"]"#, "[true]", "[null]", "[99999999999999999999]", "4", "null"] {
            guard case .badShape(path, "w", _)? = rejection("{\(entry("w", shape: shape))}", data: [0, 0, 0, 0]) else {
                return XCTFail("expected badShape for \(shape)")
            }
        }
        guard case .badShape(path, "w", _)? = rejection(#"{"w":{"dtype":"F32","data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]) else {
            return XCTFail("expected badShape for a missing shape")
        }
    }

    func testRejectsShapeWhoseElementCountOverflows() {
        let big = 1 << 40
        XCTAssertEqual(rejection("{\(entry("w", shape: "[\(big),\(big)]"))}", data: [0, 0, 0, 0]),
                       .sizeOverflow(path: path, tensor: "w", shape: [big, big]))
        // The count fits but count × 8 bytes does not.
        XCTAssertEqual(rejection("{\(entry("w", "F64", shape: "[\(1 << 61)]"))}", data: [0, 0, 0, 0]),
                       .sizeOverflow(path: path, tensor: "w", shape: [1 << 61]))
    }

    func testRejectsMalformedDataOffsets() {
        for offsets in ["[4,0]", "[0]", "[0,4,8]", "[-4,0]", "[0,4.0]", "null", #"{"begin":0}"#] {
            guard case .badDataOffsets(path, "w", _)? = rejection("{\(entry("w", offsets: offsets))}", data: [0, 0, 0, 0]) else {
                return XCTFail("expected badDataOffsets for \(offsets)")
            }
        }
    }

    func testRejectsByteCountThatDisagreesWithShapeAndDType() {
        // 2 × F32 needs 8 bytes; the offsets give 6.
        XCTAssertEqual(rejection("{\(entry("w", shape: "[2]", offsets: "[0,6]"))}", data: [UInt8](repeating: 0, count: 6)),
                       .sizeMismatch(path: path, tensor: "w", expectedBytes: 8, actualBytes: 6))
    }

    func testRejectsDuplicateTensorNames() {
        let header = "{\(entry("a")),\(entry("b", offsets: "[4,8]")),\(entry("a", offsets: "[8,12]"))}"
        XCTAssertEqual(rejection(header, data: [UInt8](repeating: 0, count: 12)), .duplicateTensor(path: path, tensor: "a"))
        // The escaped spelling of the same name is the same key.
        XCTAssertEqual(rejection("{\(entry("a")),\(entry(#"\u0061"#, offsets: "[4,8]"))}", data: [UInt8](repeating: 0, count: 8)),
                       .duplicateTensor(path: path, tensor: "a"))
    }

    func testRejectsDuplicateKeyInsideAnEntry() {
        let header = #"{"w":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#
        guard case .headerNotJSON(path, _)? = rejection(header, data: [0, 0, 0, 0]) else { return XCTFail("expected headerNotJSON") }
    }

    // MARK: Tiling of the data section

    func testRejectsOverlappingTensors() {
        let header = "{\(entry("a", shape: "[2]", offsets: "[0,8]")),\(entry("b", offsets: "[4,8]"))}"
        XCTAssertEqual(rejection(header, data: [UInt8](repeating: 0, count: 8)), .tensorsOverlap(path: path, tensor: "b", other: "a"))
    }

    func testRejectsHoleBetweenTensorsAndAtTheStart() {
        let between = "{\(entry("a")),\(entry("b", offsets: "[8,12]"))}"
        XCTAssertEqual(rejection(between, data: [UInt8](repeating: 0, count: 12)), .dataGap(path: path, start: 4, end: 8))
        let atStart = "{\(entry("a", offsets: "[4,8]"))}"
        XCTAssertEqual(rejection(atStart, data: [UInt8](repeating: 0, count: 8)), .dataGap(path: path, start: 0, end: 4))
    }

    func testRejectsTensorPastTheEndOfTheData() {
        XCTAssertEqual(rejection("{\(entry("w", shape: "[2]", offsets: "[0,8]"))}", data: [0, 0, 0, 0]),
                       .tensorPastEnd(path: path, tensor: "w", end: 8, dataSize: 4))
    }

    func testRejectsTrailingBytesAfterTheLastTensor() {
        XCTAssertEqual(rejection("{\(entry("w"))}", data: [0, 0, 0, 0, 9]), .trailingBytes(path: path, count: 1))
        XCTAssertEqual(rejection("{}", data: [1, 2]), .trailingBytes(path: path, count: 2))
    }

    // MARK: Messages

    func testDescriptionIsOneLineEvenForATensorNameWithNewlines() {
        let error = rejection(#"{"bad\nname":{"dtype":"X","shape":[],"data_offsets":[0,0]}}"#)
        XCTAssertEqual(error, .unsupportedDType(path: path, tensor: "bad\nname", dtype: "X"))
        XCTAssertEqual(error?.description.contains("\n"), false)
        XCTAssertEqual(error?.description.contains(#"'bad\nname'"#), true, error?.description ?? "")
    }
}
