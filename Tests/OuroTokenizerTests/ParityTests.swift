import Foundation
import OuroTestSupport
@testable import OuroTokenizer
import XCTest

/// Our ids against Hugging Face `tokenizers`' (recorded by Scripts/make_tokenizer_fixtures.py from
/// tokenizer.json files that `tokenizers` itself wrote), over scripts, whitespace kinds, emoji
/// sequences, digits, contractions, specials and near-misses, and source code.
final class ParityTests: XCTestCase {
    struct Case { let text: String; let ids: [Int]; let decoded: String; let decodedSkippingSpecial: String; let pieces: [String] }

    static let expected: [String: [Case]] = {
        let url = URL(fileURLWithPath: Fixtures.folder("tokenizers/expected.json"))
        let object = try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: [[String: Any]]]
        return object.mapValues { rows in
            rows.map { Case(text: $0["text"] as! String, ids: ($0["ids"] as! [NSNumber]).map(\.intValue),
                            decoded: $0["decoded"] as! String,
                            decodedSkippingSpecial: $0["decoded_skipping_special"] as! String, pieces: $0["pieces"] as! [String]) }
        }
    }()

    func check(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let tokenizer = try Tokenizer(tokenizerJSON: Fixtures.folder("tokenizers/\(name).json"))
        let cases = try XCTUnwrap(Self.expected[name])
        XCTAssertGreaterThan(cases.count, 60)
        var failures = 0
        for c in cases {
            let ids = tokenizer.encode(c.text)
            if ids != c.ids {
                failures += 1
                if failures <= 5 {
                    XCTFail("\(name): \(c.text.debugDescription.prefix(120)): ours \(ids.prefix(40)) vs tokenizers \(c.ids.prefix(40))", file: file, line: line)
                }
            }
            // The pre-tokenizer alone (no added tokens), on the normalized text.
            var buffer = Array(Tokenizer.normalize(c.text, tokenizer.normalizers).utf8)
            let pieces = tokenizer.preTokenize(&buffer, 0..<buffer.count).map { ByteLevel.encode(buffer[$0]) }
            XCTAssertEqual(pieces, c.pieces, "\(name) pre-tokens: \(c.text.debugDescription.prefix(80))", file: file, line: line)
            XCTAssertEqual(tokenizer.decode(c.ids), c.decoded, "\(name) decode: \(c.text.debugDescription.prefix(80))", file: file, line: line)
            XCTAssertEqual(tokenizer.decode(c.ids, skipSpecialTokens: true), c.decodedSkippingSpecial,
                           "\(name) decode skipping specials: \(c.text.debugDescription.prefix(80))", file: file, line: line)
        }
        XCTAssertEqual(failures, 0, "\(name): \(failures) of \(cases.count) texts differ", file: file, line: line)
    }

    func testSmolLMStyle() throws { try check("smollm") }
    func testGPT2Style() throws { try check("gpt2") }
    func testAddedTokensAndNFC() throws { try check("added") }
    func testLlama3Style() throws { try check("llama3") }
    func testBytesMissingFromTheVocabularyAreDropped() throws { try check("dropped") }
    func testBytesMissingFromTheVocabularyBecomeOneUnknownPerRun() throws { try check("unknown") }

    /// Without a normalizer or prefix space, decoding gives back the text exactly.
    func testDecodeOfEncodeIsIdentity() throws {
        for name in ["smollm", "gpt2", "llama3"] {
            let tokenizer = try Tokenizer(tokenizerJSON: Fixtures.folder("tokenizers/\(name).json"))
            for c in try XCTUnwrap(Self.expected[name]) {
                XCTAssertEqual(tokenizer.decode(tokenizer.encode(c.text)), c.text, "\(name): \(c.text.debugDescription.prefix(80))")
            }
        }
    }
}
