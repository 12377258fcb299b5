import Foundation
import GGUF
import OuroTestSupport
import OuroTokenizer
import XCTest

final class TokenizerTests: XCTestCase {
    let trainedFolder = Fixtures.folder("ouro-trained-s")

    /// The bundled trained model reads bytes: id = byte + 3, after the three ChatML specials.
    func testTrainedFixtureIsBytesPlusThree() throws {
        let tokenizer = try Tokenizer.load(folder: trainedFolder)
        let text = "Hi 42, é 中 😀\n\t"
        XCTAssertEqual(tokenizer.encode(text), Array(text.utf8).map { Int($0) + 3 })
        XCTAssertEqual(tokenizer.encode("<|im_start|>user\nx<|im_end|><|endoftext|>"),
                       [1] + Array("user\nx".utf8).map { Int($0) + 3 } + [2, 0])
        XCTAssertEqual(tokenizer.vocabularySize, 259)
        XCTAssertEqual(tokenizer.token(3), "Ā")          // byte 0x00 in GPT-2's table
        XCTAssertEqual(tokenizer.token(0x41 + 3), "A")
        XCTAssertNil(tokenizer.token(259))
        XCTAssertEqual(tokenizer.id(of: "<|im_end|>"), 2)
        XCTAssertEqual(tokenizer.eosToken, "<|im_end|>")
        XCTAssertNil(tokenizer.bosToken)
        XCTAssertFalse(tokenizer.addBOS)
        XCTAssertTrue(tokenizer.chatTemplate?.contains("<|im_start|>") ?? false)
        // generation_config.json eos 0, tokenizer_config.json eos <|im_end|> (2).
        XCTAssertEqual(tokenizer.stopTokenIDs, [0, 2])
        XCTAssertEqual(tokenizer.decode([1, 0x41 + 3, 2]), "<|im_start|>A<|im_end|>")
        XCTAssertEqual(tokenizer.decode([1, 0x41 + 3, 2], skipSpecialTokens: true), "A")
        XCTAssertEqual(tokenizer.decode([]), "")
        XCTAssertEqual(tokenizer.encode(""), [])
    }

    func testStopTokensFromGenerationConfigList() throws {
        let folder = try Fixtures.temporaryFolder()
        try FileManager.default.copyItem(atPath: trainedFolder + "/tokenizer.json", toPath: folder + "/tokenizer.json")
        try #"{"eos_token_id": [0, 1]}"#.write(toFile: folder + "/generation_config.json", atomically: true, encoding: .utf8)
        XCTAssertEqual(try Tokenizer.load(folder: folder).stopTokenIDs, [0, 1])   // no template: no <|im_end|>
    }

    func testChatTemplateFromAJinjaFileWhenTheConfigHasNone() throws {
        let folder = try Fixtures.temporaryFolder()
        try FileManager.default.copyItem(atPath: trainedFolder + "/tokenizer.json", toPath: folder + "/tokenizer.json")
        try "{{ messages[0]['content'] }}<|im_end|>".write(toFile: folder + "/chat_template.jinja", atomically: true, encoding: .utf8)
        let tokenizer = try Tokenizer.load(folder: folder)
        XCTAssertEqual(tokenizer.chatTemplate, "{{ messages[0]['content'] }}<|im_end|>")
        XCTAssertEqual(tokenizer.stopTokenIDs, [2])
    }

    /// A token may end inside a character; the streaming decoder holds the partial bytes back.
    func testStreamingDecoderNeverSplitsACharacter() throws {
        let tokenizer = try Tokenizer.load(folder: trainedFolder)
        let text = "a😀é中👨‍👩‍👧<|im_end|>z"
        var decoder = StreamingDecoder(tokenizer: tokenizer)
        var pieces: [String] = []
        for id in tokenizer.encode(text) { pieces.append(decoder.push(id)) }
        pieces.append(decoder.finish())
        XCTAssertEqual(pieces.joined(), text)
        // 😀 is four one-byte tokens: nothing until the fourth.
        XCTAssertEqual(Array(pieces[1...4]), ["", "", "", "😀"])
        XCTAssertTrue(pieces.allSatisfy { !$0.unicodeScalars.contains("\u{FFFD}") })

        var cut = StreamingDecoder(tokenizer: tokenizer, skipSpecialTokens: true)
        XCTAssertEqual(cut.push(0xF0 + 3), "")
        XCTAssertEqual(cut.push(2), "")                    // special, skipped
        XCTAssertEqual(cut.finish(), "\u{FFFD}")           // an unfinished sequence at the very end
    }

    /// Written as `tokenizer.ggml.*` keys and read back, a trained SmolLM2-style tokenizer encodes the
    /// parity corpus exactly as `tokenizers` does.
    func testGGUFKeysRoundTrip() throws {
        let tokenizer = try Tokenizer(tokenizerJSON: Fixtures.folder("tokenizers/smollm.json"))
        let rows = tokenizer.vocabularySize + 5
        let path = try Fixtures.temporaryFolder() + "/tokenizer.gguf"
        let writer = try GGUFWriter(destination: path)
        try writer.add("general.architecture", .string("ouro"))
        for (key, value) in try tokenizer.ggufMetadata(embeddingRows: rows, eosID: 0) { try writer.add(key, value) }
        try writer.add(Tokenizer.eosIDKey, .uint32(0))
        try writer.finish()

        let file = try GGUFFile(path: path)
        XCTAssertEqual(file.value(Tokenizer.preKey)?.string, "smollm")
        guard case let .array(_, tokens)? = file.value(Tokenizer.tokensKey) else { return XCTFail("no tokens") }
        XCTAssertEqual(tokens.count, rows)
        XCTAssertEqual(tokens.last?.string, "[PAD\(rows - 1)]")
        let back = try Tokenizer(gguf: file)
        XCTAssertEqual(back.vocabularySize, tokenizer.vocabularySize)
        XCTAssertNil(back.token(rows - 1))
        XCTAssertEqual(back.stopTokenIDs, [0])
        XCTAssertTrue(back.isSpecialToken(1))
        for c in try XCTUnwrap(ParityTests.expected["smollm"]) {
            XCTAssertEqual(back.encode(c.text), c.ids, c.text.debugDescription)
        }
    }

    func testGGUFRefusesWhatItsKeysCannotSay() throws {
        let added = try Tokenizer(tokenizerJSON: Fixtures.folder("tokenizers/added.json"))
        XCTAssertThrowsError(try added.ggufMetadata(embeddingRows: 100_000, eosID: nil)) { error in
            XCTAssertTrue("\(error)".contains("unsupported normalizer"), "\(error)")
        }
        let smollm = try Tokenizer(tokenizerJSON: Fixtures.folder("tokenizers/smollm.json"))
        XCTAssertThrowsError(try smollm.ggufMetadata(embeddingRows: 384, eosID: nil)) { error in
            XCTAssertTrue("\(error)".hasSuffix("smollm.json: has 3000 tokens but the model's embedding has 384 rows"), "\(error)")
        }
    }
}
