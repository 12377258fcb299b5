import OuroIO
import XCTest

final class JSONQuotedTests: XCTestCase {
    // Expected strings are Python 3's json.dumps(text, ensure_ascii=False) output.
    func testMatchesPythonJSONDumps() {
        XCTAssertEqual(jsonQuoted(""), #""""#)
        XCTAssertEqual(jsonQuoted("a\"b\\c"), #""a\"b\\c""#)
        XCTAssertEqual(jsonQuoted("\n\r\t\u{08}\u{0C}"), #""\n\r\t\b\f""#)
        XCTAssertEqual(jsonQuoted("\u{00}\u{01}\u{1F}"), #""\u0000\u0001\u001f""#)
        // DEL, non-ASCII, U+2028 and "/" are left as they are.
        XCTAssertEqual(jsonQuoted("\u{7F}é\u{2028}/😀"), "\"\u{7F}é\u{2028}/😀\"")
    }
}
