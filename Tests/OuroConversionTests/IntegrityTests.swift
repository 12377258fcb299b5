import Foundation
import GGUF
import OuroConversion
import OuroModel
import OuroTestSupport
import XCTest

/// Every converted file proves its integrity: any changed header byte is refused on load, any changed
/// tensor byte is named by `corruptedTensors()` (what `ouro verify` runs).
final class IntegrityTests: XCTestCase {
    private func convertedBytes() throws -> (path: String, bytes: [UInt8], file: GGUFFile) {
        let path = try Fixtures.temporaryFolder() + "/a.gguf"
        _ = try Converter(checkpoint: Fixtures.folder("ouro-tiny-a"), type: .q4_0).convert(to: path)
        return (path, Array(try Data(contentsOf: URL(fileURLWithPath: path))), try GGUFFile(path: path))
    }

    private func write(_ bytes: [UInt8], _ path: String) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    func testAConvertedFileVerifiesAndRecordsItsSource() throws {
        let (_, _, file) = try convertedBytes()
        XCTAssertTrue(file.hasChecksums)
        XCTAssertNoThrow(try file.checkHeaderIntegrity())
        XCTAssertEqual(try file.corruptedTensors(), [])
        guard case let .array(_, names)? = file.value("ouro.source.files"),
              case let .array(_, sizes)? = file.value("ouro.source.sizes") else { return XCTFail("no source identity") }
        XCTAssertEqual(names, [.string("model.safetensors")])
        let size = try FileManager.default.attributesOfItem(atPath: Fixtures.folder("ouro-tiny-a") + "/model.safetensors")[.size] as! Int
        XCTAssertEqual(sizes, [.uint64(UInt64(size))])
    }

    func testFlippingAByteInAnyTensorNamesExactlyThatTensor() throws {
        let (path, original, file) = try convertedBytes()
        let copy = path + ".copy.gguf"
        for tensor in file.tensors {
            let start = file.dataOffset + tensor.offset
            for position in Set([start, start + tensor.byteCount / 2, start + tensor.byteCount - 1]) {
                var bytes = original
                bytes[position] ^= 0x01
                try write(bytes, copy)
                XCTAssertEqual(try GGUFFile(path: copy).corruptedTensors(), [tensor.name], "byte \(position)")
            }
        }
    }

    func testChangingAnyHeaderByteIsRefusedOnLoad() throws {
        let (path, original, file) = try convertedBytes()
        let copy = path + ".copy.gguf"
        // The padding between the tensor table and the data section carries nothing.
        var headerEnd = file.dataOffset
        while headerEnd > 0 && original[headerEnd - 1] == 0 { headerEnd -= 1 }
        var refused = 0
        for position in 0..<headerEnd {
            var bytes = original
            bytes[position] ^= 0x04
            try write(bytes, copy)
            do {
                // What every load runs first (OuroWeights.load(gguf:)): the reader's checks, then the header checksum.
                try GGUFFile(path: copy).checkHeaderIntegrity()
                // Passes only if the change sits in a stored tensor checksum, which verification catches.
                XCTAssertFalse(try GGUFFile(path: copy).corruptedTensors().isEmpty, "byte \(position) went unnoticed")
            } catch {
                refused += 1
            }
        }
        XCTAssertGreaterThan(refused, headerEnd / 2)
    }

    func testTheRuntimeRefusesAFileWithAnAlteredHyperParameterAndSaysHowToVerify() throws {
        let (path, original, file) = try convertedBytes()
        // ouro.loop_count: u32 value right after the key and its type.
        let key = Array("ouro.loop_count".utf8)
        let at = (0..<file.dataOffset).first { Array(original[$0..<$0 + key.count]) == key }! + key.count + 4
        XCTAssertEqual(original[at], 4)
        var bytes = original
        bytes[at] = 3
        let copy = path + ".copy.gguf"
        try write(bytes, copy)
        XCTAssertThrowsError(try OuroWeights.load(gguf: copy)) { error in
            XCTAssertEqual(error as? GGUFError, .headerChecksumMismatch(path: copy))
            XCTAssertTrue("\(error)".contains("ouro verify"), "\(error)")
        }
    }
}
