import Foundation
import OuroIO
import XCTest

final class MappedFileTests: XCTestCase {
    private func temporaryFile(_ bytes: [UInt8]) throws -> String {
        let path = NSTemporaryDirectory() + "mapped-file-\(UUID().uuidString).bin"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    /// The huge-page copy holds exactly the file's bytes, for lengths around page and huge-page
    /// edges (the copy's mapping is rounded up to 2 MiB and read in 64 MiB pieces).
    func testHugePageCopyHoldsTheFileBytes() throws {
        var generator = SystemRandomNumberGenerator()
        for length in [0, 1, 4095, 4097, 2 << 20, (2 << 20) + 3, (3 << 20) - 1] {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let path = try temporaryFile(bytes)
            let copy = try MappedFile(path: path, residency: .hugePages)
            let mapped = try MappedFile(path: path, residency: .mapped)
            XCTAssertEqual(copy.count, length)
            XCTAssertEqual(Array(copy.bytes), bytes, "length \(length)")
            XCTAssertEqual(Array(mapped.bytes), bytes, "length \(length)")
            #if os(Linux)
            if length > 0 {
                // 2 MiB aligned, so each full 2 MiB of the file can sit in one huge page.
                XCTAssertEqual(Int(bitPattern: copy.bytes.baseAddress!) % (2 << 20), 0)
            }
            #endif
        }
    }

    func testHugePageCopyOfAMissingFileNamesThePath() {
        let path = NSTemporaryDirectory() + "no-such-file-\(UUID().uuidString)"
        XCTAssertThrowsError(try MappedFile(path: path, residency: .hugePages)) { error in
            guard case let FileIOError.cannotOpen(failed, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(failed, path)
            XCTAssertTrue("\(error)".hasPrefix(path + ": cannot open"))
        }
    }
}
