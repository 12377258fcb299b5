import Foundation
import GGUF
import OuroConversion
import OuroTestSupport
import OuroTokenizer
import XCTest

/// `convert` stores the checkpoint's tokenizer as llama.cpp's `tokenizer.ggml.*` keys.
final class TokenizerConversionTests: XCTestCase {
    let folder = Fixtures.folder("ouro-trained-s")

    private func converted() throws -> String {
        let out = try Fixtures.temporaryFolder() + "/s.gguf"
        _ = try Converter(checkpoint: folder, type: .f16).convert(to: out)
        return out
    }

    /// Read back by Tokenizer(gguf:), the file tokenizes as the folder does, with no side files.
    func testGGUFTokenizerEqualsTheFolders() throws {
        let fromFile = try Tokenizer(gguf: GGUFFile(path: try converted()))
        let fromFolder = try Tokenizer.load(folder: folder)
        let text = "<|im_start|>user\nHello 2024 — naïve 😀<|im_end|>\n"
        XCTAssertEqual(fromFile.encode(text), fromFolder.encode(text))
        XCTAssertEqual(fromFile.vocabularySize, 259)
        XCTAssertEqual(fromFile.stopTokenIDs, [0, 2])   // config eos 0; tokenizer_config eos <|im_end|> as eot
        XCTAssertEqual(fromFile.chatTemplate, fromFolder.chatTemplate)
        XCTAssertFalse(fromFile.addBOS)
    }

    /// gguf-py (llama.cpp's reader) sees the keys llama.cpp's converter would write for this tokenizer.
    func testGGUFPyReadsTheTokenizerKeys() throws {
        let python = ProcessInfo.processInfo.environment["OURO_PYTHON"] ?? "python3"
        guard run(python, ["-c", "import gguf, numpy"]).status == 0 else {
            throw XCTSkip("gguf-py not importable by \(python); Scripts/test.sh installs it into a venv")
        }
        let result = run(python, [Fixtures.root + "/../../Scripts/check_gguf.py", try converted()])
        XCTAssertEqual(result.status, 0, result.output)
        let json = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as! [String: Any]
        let metadata = json["metadata"] as! [String: [String: Any]]
        func value(_ key: String) -> Any? { metadata[key]?["value"] }
        XCTAssertEqual(value("tokenizer.ggml.model") as? String, "gpt2")
        XCTAssertEqual(value("tokenizer.ggml.pre") as? String, "smollm")
        let tokens = try XCTUnwrap(value("tokenizer.ggml.tokens") as? [String])
        XCTAssertEqual(tokens.count, 384)   // padded to the embedding's rows, as llama.cpp pads
        XCTAssertEqual(Array(tokens[0..<3]), ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
        // GPT-2's byte table, written out independently: '!' is itself, byte 0 is U+0100, space U+0120.
        XCTAssertEqual(tokens[3 + 0x21], "!")
        XCTAssertEqual(tokens[3 + 0x00], "\u{100}")
        XCTAssertEqual(tokens[3 + 0x20], "\u{120}")
        XCTAssertEqual(tokens[259], "[PAD259]")
        let types = try XCTUnwrap(value("tokenizer.ggml.token_type") as? [Int])
        XCTAssertEqual(metadata["tokenizer.ggml.token_type"]?["element_type"] as? String, "INT32")
        XCTAssertEqual(types, [3, 3, 3] + [Int](repeating: 1, count: 256) + [Int](repeating: 5, count: 125))
        XCTAssertEqual((value("tokenizer.ggml.merges") as? [String])?.count, 0)
        XCTAssertEqual(value("tokenizer.ggml.add_bos_token") as? Bool, false)
        XCTAssertEqual(value("tokenizer.ggml.eos_token_id") as? Int, 0)
        XCTAssertEqual(value("tokenizer.ggml.eot_token_id") as? Int, 2)
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/tokenizer_config.json"))) as! [String: Any]
        XCTAssertEqual(value("tokenizer.chat_template") as? String, config["chat_template"] as? String)
        XCTAssertNil(metadata["tokenizer.huggingface.json"])
    }

    private func run(_ executable: String, _ arguments: [String]) -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [executable] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        let data: Data
        do { try process.run(); data = pipe.fileHandleForReading.readDataToEndOfFile() } catch { return (-1, "\(error)") }
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
