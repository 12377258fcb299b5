import XCTest
@testable import GGUF
import Quantization

final class GGUFMalformedTests: XCTestCase {
    func testValidBaselineReads() throws {
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try writeBytes(RawGGUF.valid().bytes(), to: folder + "/ok.gguf")
        let file = try GGUFFile(path: folder + "/ok.gguf")
        XCTAssertEqual(file.tensors.map(\.name), ["a", "b"])
        XCTAssertEqual(file.tensor("b")?.byteCount, 16)
        XCTAssertEqual(file.value("ouro.block_count")?.int, 2)
    }

    func testRejectsBadMagic() throws {
        var raw = RawGGUF.valid()
        raw.magic = Array("GGML".utf8)
        guard case .badMagic(_, let found)? = try readError(raw.bytes()) else { return XCTFail() }
        XCTAssertEqual(found, Array("GGML".utf8))
    }

    func testRejectsVersion4AndVersion1QuotingIt() throws {
        for v: UInt32 in [4, 1, 0x0300_0000] {
            var raw = RawGGUF.valid()
            raw.version = v
            let error = try readError(raw.bytes())
            guard case .unsupportedVersion(_, v)? = error else { return XCTFail("\(String(describing: error))") }
            XCTAssertTrue("\(error!)".contains("version \(v)"))
        }
    }

    func testReadsVersion2() throws {
        var raw = RawGGUF.valid()
        raw.version = 2
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try writeBytes(raw.bytes(), to: folder + "/v2.gguf")
        XCTAssertEqual(try GGUFFile(path: folder + "/v2.gguf").version, 2)
    }

    func testRejectsHugeMetadataCount() throws {
        var raw = RawGGUF.valid()
        raw.keyValueCount = 1 << 62
        guard case .countTooLarge(_, "metadata count", 1 << 62, _)? = try readError(raw.bytes()) else { return XCTFail() }
        raw.keyValueCount = .max
        guard case .countTooLarge? = try readError(raw.bytes()) else { return XCTFail() }
    }

    func testRejectsHugeTensorCount() throws {
        var raw = RawGGUF.valid()
        raw.tensorCount = 1 << 62
        guard case .countTooLarge(_, "tensor count", 1 << 62, _)? = try readError(raw.bytes()) else { return XCTFail() }
    }

    func testEveryTruncationThrowsWithoutCrashing() throws {
        let bytes = RawGGUF.valid().bytes()
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        for length in 0..<bytes.count {
            let path = folder + "/t\(length).gguf"
            try writeBytes(Array(bytes[0..<length]), to: path)
            XCTAssertThrowsError(try GGUFFile(path: path), "prefix of \(length) bytes") { error in
                XCTAssertTrue(error is GGUFError, "prefix of \(length) bytes: \(error)")
            }
            try FileManager.default.removeItem(atPath: path)
        }
    }

    func testRandomByteCorruptionThrowsOrReadsNeverCrashes() throws {
        let bytes = RawGGUF.valid().bytes()
        let folder = try makeTemporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        var rng = SystemRandomNumberGenerator()
        let path = folder + "/c.gguf"
        for _ in 0..<400 {
            var corrupt = bytes
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let i = Int.random(in: 0..<corrupt.count, using: &rng)
                corrupt[i] = [0, 0xff, UInt8.random(in: 0...255, using: &rng), corrupt[i] ^ 0x80].randomElement(using: &rng)!
            }
            try writeBytes(corrupt, to: path)
            do {
                let file = try GGUFFile(path: path)
                for t in file.tensors { XCTAssertLessThanOrEqual(file.dataOffset + t.offset + t.byteCount, file.fileSize) }
            } catch {
                XCTAssertTrue(error is GGUFError, "\(error)")
            }
        }
    }

    func testRejectsHugeStringLengths() throws {
        var raw = RawGGUF()
        raw.keyValues.append(("general.name", GGUFValueType.string.rawValue, { $0.integer(UInt64(1) << 63) }))
        guard case .stringTooLong(_, "the value of 'general.name'", 1 << 63)? = try readError(raw.bytes()) else { return XCTFail() }
        // A key whose length runs past the end of the file.
        var e = GGUFEncoder()
        e.bytes(Array("GGUF".utf8)); e.integer(UInt32(3)); e.integer(UInt64(0)); e.integer(UInt64(1))
        e.integer(UInt64.max); e.bytes([UInt8](repeating: 0x61, count: 16))
        guard case .stringTooLong(_, "metadata key 0", .max)? = try readError(e.data) else { return XCTFail() }
    }

    func testRejectsInvalidUTF8() throws {
        var raw = RawGGUF()
        raw.keyValues.append(("general.name", GGUFValueType.string.rawValue, { $0.integer(UInt64(2)); $0.bytes([0xc3, 0x28]) }))
        guard case .invalidUTF8? = try readError(raw.bytes()) else { return XCTFail() }
    }

    func testRejectsUnknownValueType() throws {
        var raw = RawGGUF.valid()
        raw.keyValues.append(("x.y", 13, { $0.integer(UInt32(0)) }))
        guard case .unknownValueType(_, "x.y", 13)? = try readError(raw.bytes()) else { return XCTFail() }
        var nested = RawGGUF()
        nested.keyValues.append(("x.z", GGUFValueType.array.rawValue, { $0.integer(UInt32(99)); $0.integer(UInt64(1)) }))
        guard case .unknownValueType(_, "x.z", 99)? = try readError(nested.bytes()) else { return XCTFail() }
    }

    func testRejectsArraysNestedTooDeep() throws {
        var value = GGUFValue.array(.uint8, [.uint8(1)])
        for _ in 0..<GGUFFormat.maxArrayNesting { value = .array(.array, [value]) }
        var raw = RawGGUF()
        raw.add("deep", value)
        guard case .nestingTooDeep(_, "deep")? = try readError(raw.bytes()) else { return XCTFail() }
    }

    func testRejectsArrayCountBeyondFile() throws {
        var raw = RawGGUF()
        raw.keyValues.append(("big", GGUFValueType.array.rawValue, { $0.integer(GGUFValueType.uint64.rawValue); $0.integer(UInt64(1) << 60) }))
        guard case .countTooLarge(_, "array 'big' element count", 1 << 60, _)? = try readError(raw.bytes()) else { return XCTFail() }
    }

    func testRejectsBoolOtherThanZeroOrOne() throws {
        var raw = RawGGUF()
        raw.keyValues.append(("flag", GGUFValueType.bool.rawValue, { $0.integer(UInt8(2)) }))
        guard case .invalidBool(_, "flag", 2)? = try readError(raw.bytes()) else { return XCTFail() }
    }

    func testRejectsDuplicateKey() throws {
        var raw = RawGGUF.valid()
        raw.add("ouro.block_count", .uint32(3))
        guard case .duplicateKey(_, "ouro.block_count")? = try readError(raw.bytes()) else { return XCTFail() }
    }

    func testRejectsBadAlignment() throws {
        for value in [GGUFValue.uint32(48), .uint32(0), .uint64(32), .int32(32)] {
            var raw = RawGGUF.valid()
            raw.add("general.alignment", value)
            guard case .badAlignment? = try readError(raw.bytes()) else { return XCTFail("\(value)") }
        }
    }

    func testRejectsUnknownTensorType() throws {
        var raw = RawGGUF.valid()
        raw.tensors[1].type = 7   // Q5_1: not supported
        guard case .unknownTensorType(_, "b", 7)? = try readError(raw.bytes()) else { return XCTFail() }
    }

    func testRejectsBadShapes() throws {
        var raw = RawGGUF.valid()
        raw.tensors[0].dimensions = [8, 0]
        guard case .badDimensions(_, "a", [8, 0])? = try readError(raw.bytes()) else { return XCTFail() }
        raw.tensors[0].dimensions = [1 << 32, 1 << 32, 1 << 32]
        guard case .badDimensions? = try readError(raw.bytes()) else { return XCTFail() }
        raw.tensors[0].dimensions = [1, 1, 1, 1, 1]
        guard case .tooManyDimensions(_, "a", 5)? = try readError(raw.bytes()) else { return XCTFail() }
        raw.tensors[0].dimensions = [48]
        raw.tensors[0].type = GGMLType.q8_0.rawValue
        guard case .notWholeBlocks(_, "a", .q8_0, 48)? = try readError(raw.bytes()) else { return XCTFail() }
    }

    func testRejectsTensorNameOf64Bytes() throws {
        var raw = RawGGUF.valid()
        raw.tensors[0].name = String(repeating: "n", count: 64)
        guard case .tensorNameTooLong(_, _, 64)? = try readError(raw.bytes()) else { return XCTFail() }
    }

    func testRejectsMisalignedOffset() throws {
        var raw = RawGGUF.valid()
        raw.tensors[1].offset = 36
        guard case .misalignedOffset(_, "b", 36, 32)? = try readError(raw.bytes()) else { return XCTFail() }
    }

    func testRejectsOverlappingTensors() throws {
        var raw = RawGGUF.valid()
        raw.tensors[0].dimensions = [12]      // 48 bytes from 0 run into "b" at 32
        raw.dataSize = 64
        guard case .overlappingTensors(_, "a", "b")? = try readError(raw.bytes()) else { return XCTFail() }
        raw.tensors[0].dimensions = [4]
        raw.tensors[1].offset = 0             // same start
        guard case .overlappingTensors? = try readError(raw.bytes()) else { return XCTFail() }
    }

    func testRejectsDataPastEnd() throws {
        var raw = RawGGUF.valid()
        raw.dataSize = 47
        guard case .dataOutOfBounds(_, "b", 32, 16, 47)? = try readError(raw.bytes()) else { return XCTFail() }
        raw.dataSize = 48
        raw.tensors[1].offset = UInt64.max - 31   // aligned, and offset + size would overflow
        guard case .dataOutOfBounds? = try readError(raw.bytes()) else { return XCTFail() }
    }

    func testRejectsDuplicateTensorName() throws {
        var raw = RawGGUF.valid()
        raw.tensors[1].name = "a"
        guard case .duplicateTensor(_, "a")? = try readError(raw.bytes()) else { return XCTFail() }
    }
}
