import Foundation
import XCTest
@testable import SafeTensors

/// Paths to the shared fixtures, found relative to this file.
enum Fixtures {
    static let root: URL = {
        var url = URL(fileURLWithPath: #filePath)
        while url.lastPathComponent != "Tests" { url.deleteLastPathComponent() }
        return url.appendingPathComponent("Fixtures")
    }()

    static func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }
}

/// Assembles safetensors bytes: 8-byte little-endian header length, header, data. `declaredLength`
/// overrides the length field to build inconsistent files.
func safetensorsBytes(header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
    safetensorsBytes(headerBytes: Array(header.utf8), data: data, declaredLength: declaredLength)
}

func safetensorsBytes(headerBytes: [UInt8], data: [UInt8] = [], declaredLength: UInt64? = nil) -> [UInt8] {
    let length = declaredLength ?? UInt64(headerBytes.count)
    return withUnsafeBytes(of: length.littleEndian, Array.init) + headerBytes + data
}

/// The SafeTensorsError that `body` throws; fails the test if it returns or throws something else.
func safeTensorsError<T>(_ body: () throws -> T, file: StaticString = #filePath, line: UInt = #line) -> SafeTensorsError? {
    do {
        _ = try body()
        XCTFail("expected a SafeTensorsError, but nothing was thrown", file: file, line: line)
    } catch let error as SafeTensorsError {
        XCTAssertFalse(error.description.contains("\n"), "description must be one line", file: file, line: line)
        return error
    } catch {
        XCTFail("expected a SafeTensorsError, got \(error)", file: file, line: line)
    }
    return nil
}

/// A fresh directory under the system temporary folder, removed by the caller.
func makeTemporaryDirectory() throws -> String {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("safetensors-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url.path
}

func writeFile(_ path: String, _ bytes: [UInt8]) throws {
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}
