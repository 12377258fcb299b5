import OuroTokenizer
import XCTest

final class TokenizerErrorTests: XCTestCase {
    func testDescriptionIsOneLineNamingTheFile() {
        let error = TokenizerError.badFile(path: "tok.json", reason: "model.vocab\nis missing")
        XCTAssertFalse(error.description.contains("\n"))
        XCTAssertTrue(error.description.hasPrefix("tok.json: "))
    }
}
