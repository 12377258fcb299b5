import Foundation
import OuroTestSupport
import OuroTokenizer
import XCTest

/// Each malformed or unsupported tokenizer.json gives one line that names the file and the field or
/// construct, never a tokenizer that silently tokenizes differently.
final class MalformedTokenizerTests: XCTestCase {
    /// The trained fixture's tokenizer.json, parsed independently (JSONSerialization), to mutate.
    func base() throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.folder("ouro-trained-s/tokenizer.json")))
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }

    func expectError(_ mutate: (inout [String: Any]) -> Void, _ expected: String, line: UInt = #line) throws {
        var json = try base()
        mutate(&json)
        let path = try Fixtures.temporaryFolder() + "/tokenizer.json"
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
        try expectError(path: path, expected, line: line)
    }

    func expectError(path: String, _ expected: String, line: UInt = #line) throws {
        XCTAssertThrowsError(try Tokenizer(tokenizerJSON: path), line: line) { error in
            let message = "\(error)"
            XCTAssertTrue(message.hasPrefix(path + ": "), message, line: line)
            XCTAssertFalse(message.contains("\n"), message, line: line)
            XCTAssertTrue(message.contains(expected), "\(message) lacks \(expected)", line: line)
        }
    }

    func model(_ json: inout [String: Any], _ change: (inout [String: Any]) -> Void) {
        var model = json["model"] as! [String: Any]
        change(&model)
        json["model"] = model
    }

    func testMalformedFieldsAreNamed() throws {
        try expectError({ $0["model"] = nil }, "model is missing")
        try expectError({ model(&$0) { $0["vocab"] = nil } }, "model.vocab is missing")
        try expectError({ model(&$0) { $0["vocab"] = [1, 2] } }, "model.vocab is an array, not an object")
        try expectError({ model(&$0) { $0["vocab"] = ["a": -1] } }, "model.vocab['a'] is negative (-1)")
        try expectError({ model(&$0) { $0["vocab"] = ["a": "1"] } }, "model.vocab['a'] is a string, not an integer")
        try expectError({ model(&$0) { $0["merges"] = ["a b c"] } }, "model.merges[0] is 'a b c', not two tokens separated by one space")
        try expectError({ model(&$0) { $0["merges"] = [["A"]] } }, "model.merges[0] is not a pair of strings")
        try expectError({ model(&$0) { $0["merges"] = ["A zz"] } }, "model.merges[0] uses 'zz', which is not in model.vocab")
        try expectError({ model(&$0) { $0["merges"] = ["A B"] } }, "model.merges[0] makes 'AB', which is not in model.vocab")
        try expectError({ $0["added_tokens"] = [["id": "x", "content": "<a>"]] }, "added_tokens[0].id is a string, not an integer")
        try expectError({ $0["added_tokens"] = [["id": 1]] }, "added_tokens[0].content is missing")
        try expectError({ $0["added_tokens"] = [["id": 1, "content": "<a>", "lstrip": 1]] }, "added_tokens[0].lstrip is a number, not a boolean")
        try expectError({ model(&$0) { $0["vocab"] = ["a": 1 << 30] } }, "model.vocab['a'] is too large")
        try expectError({ $0["added_tokens"] = [["id": 10_000_000, "content": "<a>"]] }, "ids reach 10000000 for only 260 tokens")
        try expectError({ $0["pre_tokenizer"] = ["individual_digits": true] }, "pre_tokenizer.type is missing")
    }

    func testUnsupportedConstructsAreNamed() throws {
        try expectError({ model(&$0) { $0["type"] = "WordPiece" } }, "unsupported model.type 'WordPiece'")
        try expectError({ model(&$0) { $0["byte_fallback"] = true } }, "unsupported model.byte_fallback")
        try expectError({ model(&$0) { $0["dropout"] = 0.1 } }, "unsupported model.dropout")
        try expectError({ $0["normalizer"] = ["type": "Lowercase"] }, "unsupported normalizer 'Lowercase'")
        try expectError({ $0["normalizer"] = ["type": "Sequence", "normalizers": [["type": "NFC"], ["type": "Strip"]]] },
                        "unsupported normalizer.normalizers[1] 'Strip'")
        try expectError({ $0["pre_tokenizer"] = ["type": "Whitespace"] }, "unsupported pre_tokenizer 'Whitespace'")
        try expectError({ $0["pre_tokenizer"] = ["type": "Split", "pattern": ["Regex": "\\w+"], "behavior": "Isolated"] },
                        #"unsupported pre_tokenizer.pattern.Regex '\w+'"#)
        try expectError({ $0["pre_tokenizer"] = ["type": "Digits", "individual_digits": true] },
                        "unsupported pre_tokenizer without a ByteLevel step")
        try expectError({ $0["post_processor"] = ["type": "TemplateProcessing"] }, "unsupported post_processor 'TemplateProcessing'")
        try expectError({ $0["decoder"] = NSNull() }, "unsupported decoder null")
        try expectError({ $0["decoder"] = ["type": "WordPiece"] }, "unsupported decoder 'WordPiece'")
        try expectError({ $0["truncation"] = ["max_length": 8] }, "unsupported truncation")
        try expectError({ model(&$0) { $0["unk_token"] = "<unk>" } }, "model.unk_token is '<unk>', which is not in model.vocab")
    }

    func testNotJSONOrNotUTF8() throws {
        let folder = try Fixtures.temporaryFolder()
        try Data("{\"model\": ".utf8).write(to: URL(fileURLWithPath: folder + "/cut.json"))
        try expectError(path: folder + "/cut.json", "is not valid JSON")
        try Data([0x7B, 0xFF, 0x7D]).write(to: URL(fileURLWithPath: folder + "/latin1.json"))
        try expectError(path: folder + "/latin1.json", "is not valid UTF-8")
        try Data("{\"model\": {}, \"model\": {}}".utf8).write(to: URL(fileURLWithPath: folder + "/twice.json"))
        try expectError(path: folder + "/twice.json", "duplicate key 'model'")
    }
}
