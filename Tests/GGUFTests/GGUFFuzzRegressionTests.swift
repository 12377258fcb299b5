import XCTest
import GGUF

/// Inputs found by Scripts/fuzz.sh (target `gguf`), minimized; each once broke a reader guarantee.
final class GGUFFuzzRegressionTests: XCTestCase {
    /// A metadata key holding "\n" and "\u{1}" ended up raw in the truncation message.
    func testErrorNamingAKeyWithControlCharactersStaysOneLine() throws {
        let bytes: [UInt8] = [
            0x47, 0x47, 0x55, 0x46, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x67, 0x65, 0x6e, 0x65, 0x72, 0x61, 0x6e, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00,
            0x00, 0x0a, 0x00, 0x00,
        ]
        XCTAssertThrowsError(try GGUFFile(path: "crash.gguf", bytes: bytes)) { error in
            guard case let GGUFError.truncated(_, what, _, _) = error else { return XCTFail("unexpected \(error)") }
            XCTAssertTrue(what.contains("\n"), "the key is kept as stored in the case")
            let text = "\(error)"
            XCTAssertFalse(text.contains("\n"))
            XCTAssertFalse(text.unicodeScalars.contains("\u{1}"))
            XCTAssertTrue(text.hasPrefix("crash.gguf: file ends inside the value type of 'generan\\u{01}"), text)
            XCTAssertTrue(text.contains("\\n"), text)
        }
    }

    /// Terminal escape sequences (ESC, C1 CSI) in a tensor name are shown escaped, not sent.
    func testErrorNamingATensorWithEscapeSequenceIsEscaped() {
        let error = GGUFError.duplicateTensor(path: "x.gguf", tensor: "a\u{1B}[2Jb\u{9B}c\u{2028}")
        XCTAssertEqual(error.description, "x.gguf: tensor 'a\\u{1B}[2Jb\\u{009B}c\\u{2028}' appears twice")
    }
}
