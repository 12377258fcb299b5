import Foundation
import XCTest
@testable import GGUF
import Quantization

final class GGUFWriterTests: XCTestCase {
    private var folder = ""

    override func setUpWithError() throws { folder = try makeTemporaryFolder() }
    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: folder) }

    private var folderContents: [String] { (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] }

    func testEnforcesMetadataThenTensorInfosThenData() throws {
        let writer = try GGUFWriter(destination: folder + "/x.gguf")
        XCTAssertThrowsError(try writer.writeTensorData([1, 2, 3, 4])) { error in
            guard case .wrongWriterState(_, "writeTensorData", "adding metadata")? = error as? GGUFError else { return XCTFail("\(error)") }
        }
        try writer.add("general.architecture", .string("ouro"))
        try writer.addTensor(name: "w", dimensions: [1], type: .f32)
        XCTAssertThrowsError(try writer.add("late.key", .uint8(1))) { error in
            guard case .wrongWriterState(_, "add('late.key')", "adding tensor infos")? = error as? GGUFError else { return XCTFail("\(error)") }
        }
        try writer.writeTensorData([0, 0, 0x80, 0x3f])
        XCTAssertThrowsError(try writer.addTensor(name: "v", dimensions: [1], type: .f32))
        try writer.finish()
        XCTAssertThrowsError(try writer.finish())
        XCTAssertEqual(try GGUFFile(path: folder + "/x.gguf").tensors.map(\.name), ["w"])
    }

    func testRejectsMoreBytesThanTheTensorHolds() throws {
        let writer = try GGUFWriter(destination: folder + "/x.gguf")
        try writer.addTensor(name: "a", dimensions: [2], type: .f16)
        XCTAssertThrowsError(try writer.writeTensorData([1, 2, 3, 4, 5])) { error in
            XCTAssertEqual(error as? GGUFError, .tooMuchTensorData(path: folder + "/x.gguf", tensor: "a", expected: 4, received: 5))
        }
        try writer.writeTensorData([1, 2, 3, 4])
        XCTAssertThrowsError(try writer.writeTensorData([9]), "data after the last tensor")
        writer.abort()
    }

    func testFinishWithIncompleteTensorFailsAndAbortLeavesNothing() throws {
        let writer = try GGUFWriter(destination: folder + "/x.gguf")
        try writer.addTensor(name: "a", dimensions: [32], type: .q8_0)
        try writer.addTensor(name: "b", dimensions: [4], type: .f32)
        try writer.writeTensorData([UInt8](repeating: 0, count: 34))
        try writer.writeTensorData([UInt8](repeating: 0, count: 8))
        XCTAssertThrowsError(try writer.finish()) { error in
            XCTAssertEqual(error as? GGUFError, .incompleteTensorData(path: folder + "/x.gguf", tensor: "b", expected: 16, received: 8))
        }
        writer.abort()
        XCTAssertEqual(folderContents, [])
    }

    func testAbortKeepsAnExistingDestinationUntouched() throws {
        let path = folder + "/x.gguf"
        try writeBytes([1, 2, 3], to: path)
        let writer = try GGUFWriter(destination: path)
        try writer.add("k", .bool(true))
        try writer.addTensor(name: "a", dimensions: [1], type: .f32)
        try writer.writeTensorData([0, 0, 0, 0])
        writer.abort()
        XCTAssertEqual(try readBytes(path), [1, 2, 3])
        XCTAssertEqual(folderContents, ["x.gguf"])
    }

    func testRejectsBadNamesShapesAndValues() throws {
        let writer = try GGUFWriter(destination: folder + "/x.gguf")
        defer { writer.abort() }
        XCTAssertThrowsError(try writer.add("general.alignment", .uint32(32)))
        XCTAssertThrowsError(try writer.add("", .uint32(1)))
        try writer.add("k", .uint32(1))
        XCTAssertThrowsError(try writer.add("k", .uint32(2))) { XCTAssertEqual($0 as? GGUFError, .duplicateKey(path: folder + "/x.gguf", key: "k")) }
        XCTAssertThrowsError(try writer.add("mixed", .array(.uint32, [.uint32(1), .int32(2)]))) { error in
            XCTAssertEqual(error as? GGUFError, .arrayTypeMismatch(path: folder + "/x.gguf", key: "mixed", declared: .uint32))
        }
        let long = String(repeating: "x", count: 64)
        XCTAssertThrowsError(try writer.addTensor(name: long, dimensions: [4], type: .f32)) { error in
            XCTAssertEqual(error as? GGUFError, .tensorNameTooLong(path: folder + "/x.gguf", name: long, bytes: 64))
            XCTAssertTrue("\(error)".contains("at most 63"))
        }
        try writer.addTensor(name: String(repeating: "x", count: 63), dimensions: [4], type: .f32)
        XCTAssertThrowsError(try writer.addTensor(name: "q", dimensions: [48], type: .q4_0))
        XCTAssertThrowsError(try writer.addTensor(name: "z", dimensions: [4, 0], type: .f32))
        XCTAssertThrowsError(try writer.addTensor(name: "d", dimensions: [1, 1, 1, 1, 1], type: .f32))
        XCTAssertThrowsError(try writer.addTensor(name: String(repeating: "x", count: 63), dimensions: [4], type: .f32))
        XCTAssertThrowsError(try GGUFWriter(destination: folder + "/y.gguf", alignment: 48))
    }

    func testFileWithoutTensorsIsValid() throws {
        let writer = try GGUFWriter(destination: folder + "/empty.gguf", alignment: 32)
        try writer.add("general.architecture", .string("ouro"))
        try writer.finish()
        let file = try GGUFFile(path: folder + "/empty.gguf")
        XCTAssertEqual(file.tensors.count, 0)
        XCTAssertEqual(file.value("general.architecture")?.string, "ouro")
        XCTAssertEqual(file.alignment, 32)
    }

    func testAlignmentIsHonouredForEveryTensor() throws {
        let writer = try GGUFWriter(destination: folder + "/x.gguf", alignment: 256)
        for (i, n) in [3, 100, 1].enumerated() {
            try writer.addTensor(name: "t\(i)", dimensions: [n], type: .bf16)
        }
        for n in [3, 100, 1] { try writer.writeTensorData([UInt8](repeating: 0xab, count: 2 * n)) }
        try writer.finish()
        let file = try GGUFFile(path: folder + "/x.gguf")
        XCTAssertEqual(file.alignment, 256)
        XCTAssertEqual(file.dataOffset % 256, 0)
        XCTAssertEqual(file.tensors.map(\.offset), [0, 256, 512])
        XCTAssertEqual(file.fileSize, file.dataOffset + 768)
    }
}
