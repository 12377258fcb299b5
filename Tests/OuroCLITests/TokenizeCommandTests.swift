import Foundation
import OuroTestSupport
import XCTest

final class TokenizeCommandTests: XCTestCase {
    let trained = Fixtures.folder("ouro-trained-s")

    /// The trained fixture's ids are byte + 3, specials 1 and 2: computed here from the UTF-8 bytes.
    func testPrintsIdsFromAFolderAndFromItsGGUF() throws {
        let text = "<|im_start|>user\nHi 42 é<|im_end|>"
        let expected = ([1] + Array("user\nHi 42 é".utf8).map { Int($0) + 3 } + [2]).map(String.init).joined(separator: ",")
        let fromFolder = try CLI.run(["tokenize", trained, "--text", text])
        XCTAssertEqual(fromFolder.status, 0, fromFolder.stderr)
        XCTAssertEqual(fromFolder.stdout, expected + "\n")

        let gguf = try Fixtures.temporaryFolder() + "/s.gguf"
        XCTAssertEqual(try CLI.run(["convert", trained, "-o", gguf, "--type", "q8_0"]).status, 0)
        let file = try Fixtures.temporaryFolder() + "/prompt.txt"
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        let fromFile = try CLI.run(["tokenize", gguf, "--file", file, "--json"])
        XCTAssertEqual(fromFile.status, 0, fromFile.stderr)
        let json = try JSONSerialization.jsonObject(with: Data(fromFile.stdout.utf8)) as! [String: [Int]]
        XCTAssertEqual(json["ids"]?.map(String.init).joined(separator: ","), expected)
    }

    func testBadInputIsOneLineAndExitTwo() throws {
        let tiny = Fixtures.folder("ouro-tiny-a")
        let gguf = try Fixtures.temporaryFolder() + "/a.gguf"
        XCTAssertEqual(try CLI.run(["convert", tiny, "-o", gguf, "--type", "f32"]).status, 0)
        let latin1 = try Fixtures.temporaryFolder() + "/latin1.txt"
        try Data([0x63, 0x61, 0x66, 0xE9]).write(to: URL(fileURLWithPath: latin1))
        let cases: [([String], String)] = [
            (["tokenize", tiny, "--text", "x"], "has no tokenizer.json"),
            (["tokenize", gguf, "--text", "x"], "tokenizer.ggml.model is missing"),
            (["tokenize", trained, "--file", latin1], "latin1.txt: is not valid UTF-8"),
            (["tokenize", trained, "--file", "/nonexistent/prompt.txt"], "/nonexistent/prompt.txt: cannot be read"),
            (["tokenize", trained], "'--text' or '--file'"),
            (["tokenize", trained, "--text", "a", "--file", latin1], "cannot be used together"),
        ]
        for (arguments, message) in cases {
            let result = try CLI.run(arguments)
            XCTAssertEqual(result.status, 2, "\(arguments): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(message), "\(arguments): \(result.stderr)")
            XCTAssertEqual(result.stdout, "", "\(arguments)")
        }
    }

    /// A malformed tokenizer.json, or one larger than the embedding, stops `convert` before it writes.
    func testConvertRefusesABadTokenizerAndWritesNothing() throws {
        for (tokenizer, message) in [("{\"model\": {\"vocab\": {}}}", "tokenizer.json: model.merges is missing"),
                                     (try String(contentsOfFile: Fixtures.folder("tokenizers/smollm.json")),
                                      "tokenizer.json: has 3000 tokens but the model's embedding has 384 rows")] {
            let folder = try Fixtures.temporaryFolder()
            for name in ["config.json", "model.safetensors"] {
                try FileManager.default.copyItem(atPath: trained + "/" + name, toPath: folder + "/" + name)
            }
            try tokenizer.write(toFile: folder + "/tokenizer.json", atomically: true, encoding: .utf8)
            let out = try Fixtures.temporaryFolder() + "/out.gguf"
            let result = try CLI.run(["convert", folder, "-o", out, "--type", "q8_0"])
            XCTAssertEqual(result.status, 2, result.stderr)
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
            XCTAssertTrue(result.stderr.contains(message), result.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out))
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: (out as NSString).deletingLastPathComponent), [])
        }
    }
}
