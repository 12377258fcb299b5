import Foundation
import XCTest
import OuroValidation

/// Reader guarantees checked against what Scripts/fuzz.sh (target `bundle`) feeds the bundle reader.
final class BundleFuzzRegressionTests: XCTestCase {
    /// Metadata is untrusted text: a format_version with a newline and an escape sequence is shown escaped.
    func testUnsupportedVersionWithControlCharactersStaysOneLine() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("v.safetensors")
        // Written as JSON escapes (the helper pastes the text between quotes); the file holds "1\n\u{1B}[31m".
        try TestSupport.write(TestSupport.smallBundle(metadata: ["format": "ouro-reference", "format_version": "1\\n\\u001b[31m"]), to: url)
        let failure = TestSupport.failure { _ = try ReferenceBundle(path: url.path) }
        XCTAssertEqual(failure, .unsupportedFormatVersion(path: url.path, version: "1\n\u{1B}[31m"))
        XCTAssertEqual(failure?.description,
                       "\(url.path): ouro-reference format_version '1\\n\\u{1B}[31m' is not supported; expected 1")
    }
}
