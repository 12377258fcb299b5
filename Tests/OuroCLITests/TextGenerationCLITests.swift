import Foundation
import OuroTestSupport
import SafeTensors
import XCTest

/// `generate --prompt / --chat` on the trained fixture, whose tokenizer is byte-level with no merges:
/// token id = byte + 3 (ids 0-2 are <|endoftext|>, <|im_start|>, <|im_end|>), so expected ids are
/// computed here from the bytes.
final class TextGenerationCLITests: XCTestCase {
    static let model = Fixtures.folder("ouro-trained-s")

    static func ids(_ text: String) -> [Int] { text.utf8.map { Int($0) + 3 } }
    static func text(_ ids: [Int]) -> String { String(decoding: ids.filter { $0 >= 3 }.map { UInt8($0 - 3) }, as: UTF8.self) }

    private func json(_ result: CLI.Result, _ label: String = "") throws -> [String: Any] {
        XCTAssertEqual(result.status, 0, "\(label) \(result.stderr)")
        return try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
    }

    func testPromptTextGivesTheReferenceGreedyContinuation() throws {
        // Prompt p3 of the PyTorch reference bundle, as text; its greedy continuation is recorded there.
        let bundle = try SafeTensorsFile(path: Self.model + "/reference.safetensors")
        let promptIDs = try bundle.int64s("p3.input_ids").map { Int($0) }
        let greedy = try bundle.int64s("p3.greedy_cached").map { Int($0) }
        let prompt = Self.text(promptIDs)
        let output = try json(try CLI.run(["generate", Self.model, "--prompt", prompt, "--max-new", "12", "--json"]))
        XCTAssertEqual(output["prompt"] as? [Int], promptIDs)
        XCTAssertEqual(output["generated"] as? [Int], greedy)
        XCTAssertEqual(output["text"] as? String, Self.text(greedy))
        XCTAssertEqual(output["stop_reason"] as? String, "max_new")

        // Streamed: the same text on stdout, then a newline.
        let streamed = try CLI.run(["generate", Self.model, "--prompt", prompt, "--max-new", "5"])
        XCTAssertEqual(streamed.status, 0, streamed.stderr)
        XCTAssertEqual(streamed.stdout, Self.text(Array(greedy.prefix(5))) + "\n")
        XCTAssertEqual(streamed.stderr, "")
    }

    func testChatRendersTheModelsTemplateAndSystemMessage() throws {
        let folder = try Fixtures.temporaryFolder()
        let messages = folder + "/messages.json"
        try #"[{"role": "user", "content": "import os"}]"#.write(toFile: messages, atomically: true, encoding: .utf8)
        let output = try json(try CLI.run(["generate", Self.model, "--chat", messages, "--system", "Be brief.", "--max-new", "3", "--json"]))
        // ChatML: <|im_start|>role\ncontent<|im_end|>\n per message, then <|im_start|>assistant\n.
        let expected = [1] + Self.ids("system\nBe brief.") + [2] + Self.ids("\n")
            + [1] + Self.ids("user\nimport os") + [2] + Self.ids("\n") + [1] + Self.ids("assistant\n")
        XCTAssertEqual(output["prompt"] as? [Int], expected)
        let generated = output["generated"] as? [Int] ?? []
        XCTAssertTrue((1...3).contains(generated.count), "\(generated)")
        XCTAssertEqual(output["text"] as? String, Self.text(generated.filter { $0 != 0 && $0 != 2 }))

        // The same prompt as token ids gives the same greedy tokens.
        let tokens = try CLI.run(["generate", Self.model, "--tokens", expected.map(String.init).joined(separator: ","), "--max-new", "3"])
        XCTAssertEqual(tokens.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",").map { Int($0)! },
                       Array(generated.prefix(while: { $0 != 0 && $0 != 2 }) + generated.drop(while: { $0 != 0 && $0 != 2 }).prefix(1)))
    }

    func testTheSameSeedGivesTheSameText() throws {
        let run = { (seed: String) throws -> [String: Any] in
            try self.json(try CLI.run(["generate", Self.model, "--prompt", "def ", "--max-new", "6", "--temperature", "1.2",
                                       "--top-k", "20", "--top-p", "0.95", "--min-p", "0.01", "--repeat-penalty", "1.1",
                                       "--seed", seed, "--json"]))
        }
        let a = try run("11"), b = try run("11")
        XCTAssertEqual(a["generated"] as? [Int], b["generated"] as? [Int])
        XCTAssertEqual(a["text"] as? String, b["text"] as? String)
        XCTAssertEqual((a["generated"] as? [Int])?.count, 6)
    }

    func testTemplateChoicesAndRefusals() throws {
        // A copy of the model whose tokenizer has no chat template, and one whose template raises.
        let plain = try Fixtures.temporaryFolder(), raising = try Fixtures.temporaryFolder()
        for folder in [plain, raising] {
            for file in ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json"] {
                try FileManager.default.createSymbolicLink(atPath: folder + "/" + file, withDestinationPath: Self.model + "/" + file)
            }
        }
        try #"{"eos_token": "<|im_end|>"}"#.write(toFile: plain + "/tokenizer_config.json", atomically: true, encoding: .utf8)
        try #"{"eos_token": "<|im_end|>", "chat_template": "{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{{ messages[0]['content'] }}"}"#
            .write(toFile: raising + "/tokenizer_config.json", atomically: true, encoding: .utf8)
        let messages = plain + "/messages.json"
        try #"[{"role": "user", "content": "x"}]"#.write(toFile: messages, atomically: true, encoding: .utf8)

        let missing = try CLI.run(["generate", plain, "--chat", messages, "--max-new", "1"])
        XCTAssertEqual(missing.status, 2)
        XCTAssertTrue(missing.stderr.contains("no chat template") && missing.stderr.contains("--chat-format chatml"), missing.stderr)
        let chatml = try json(try CLI.run(["generate", plain, "--chat", messages, "--chat-format", "chatml", "--max-new", "1", "--json"]))
        XCTAssertEqual(chatml["prompt"] as? [Int], [1] + Self.ids("user\nx") + [2] + Self.ids("\n") + [1] + Self.ids("assistant\n"))

        let refused = try CLI.run(["generate", raising, "--chat", messages, "--system", "s", "--max-new", "1"])
        XCTAssertEqual(refused.status, 2)
        XCTAssertEqual(refused.stderr, "ouro: chat template \(raising)/tokenizer_config.json refuses the conversation: System role not supported\n")
        let accepted = try json(try CLI.run(["generate", raising, "--chat", messages, "--max-new", "1", "--json"]))
        XCTAssertEqual(accepted["prompt"] as? [Int], Self.ids("x"))
    }

    func testTokenizeChatPrintsTheRenderedPromptAndItsIDs() throws {
        // A copy of the model with the Ouro-Thinking template (enable_thinking opens a <think> block).
        let folder = try Fixtures.temporaryFolder()
        for file in ["config.json", "model.safetensors", "tokenizer.json"] {
            try FileManager.default.createSymbolicLink(atPath: folder + "/" + file, withDestinationPath: Self.model + "/" + file)
        }
        let template = "{%- for message in messages -%}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{%- endfor -%}"
            + "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' }}{%- if enable_thinking is defined and enable_thinking is true -%}{{- '<think>\\n' }}{%- endif -%}{%- endif -%}"
        try #"{"eos_token": "<|im_end|>", "chat_template": "\#(template)"}"#.write(toFile: folder + "/tokenizer_config.json", atomically: true, encoding: .utf8)
        let messages = folder + "/messages.json"
        try #"[{"role": "user", "content": "2+2?"}]"#.write(toFile: messages, atomically: true, encoding: .utf8)
        let prompt = "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n"
        for (extra, suffix) in [([String](), ""), (["--thinking"], "<think>\n"), (["--no-thinking"], "")] {
            let output = try json(try CLI.run(["tokenize", folder, "--chat", messages, "--json"] + extra), "\(extra)")
            XCTAssertEqual(output["text"] as? String, prompt + suffix, "\(extra)")
            XCTAssertEqual(output["ids"] as? [Int], [1] + Self.ids("user\n2+2?") + [2] + Self.ids("\n") + [1] + Self.ids("assistant\n" + suffix))
        }
        let plain = try CLI.run(["tokenize", folder, "--chat", messages])
        XCTAssertEqual(plain.stdout, ([1] + Self.ids("user\n2+2?") + [2] + Self.ids("\n") + [1] + Self.ids("assistant\n")).map(String.init).joined(separator: ",") + "\n")
    }

    func testBadInputIsOneLineWithExitCode2() throws {
        let folder = try Fixtures.temporaryFolder()
        func file(_ name: String, _ text: String) throws -> String {
            try text.write(toFile: folder + "/" + name, atomically: true, encoding: .utf8)
            return folder + "/" + name
        }
        let malformed = try file("malformed.json", #"[{"role": "user", "content": }]"#)
        let unknownRole = try file("role.json", #"[{"role": "bot", "content": "hi"}]"#)
        let notArray = try file("object.json", #"{"role": "user", "content": "hi"}"#)
        let noContent = try file("nocontent.json", #"[{"role": "user"}]"#)
        let withSystem = try file("system.json", #"[{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]"#)
        let good = try file("good.json", #"[{"role": "user", "content": "u"}]"#)
        let cases: [([String], String)] = [
            (["generate", Fixtures.folder("ouro-tiny-a"), "--prompt", "x"], "tokenizer.json"),
            (["generate", Self.model, "--chat", malformed], "malformed.json: is not valid JSON"),
            (["generate", Self.model, "--chat", unknownRole], "unknown role 'bot'"),
            (["generate", Self.model, "--chat", notArray], "must be a JSON array"),
            (["generate", Self.model, "--chat", noContent], "message 0 has no \"content\" string"),
            (["generate", Self.model, "--chat", folder + "/missing.json"], "missing.json"),
            (["generate", Self.model, "--chat", withSystem, "--system", "x"], "already starts with a system message"),
            (["chat", Fixtures.folder("ouro-tiny-a")], "tokenizer.json"),
            (["tokenize", Self.model, "--chat", unknownRole], "unknown role 'bot'"),
        ]
        for (arguments, mention) in cases {
            let result = try CLI.run(arguments)
            XCTAssertEqual(result.status, 2, "\(arguments): \(result.stderr)")
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, "\(arguments): \(result.stderr)")
            XCTAssertTrue(result.stderr.hasPrefix("ouro: ") && result.stderr.contains(mention), "\(arguments): \(result.stderr)")
            XCTAssertEqual(result.stdout, "", "\(arguments)")
        }
        // Usage errors: ArgumentParser's message naming the option (then the usage lines), exit 2.
        let usage: [([String], String)] = [
            (["generate", Self.model, "--prompt", "x", "--top-k", "5"], "'--top-k' applies to sampling"),
            (["generate", Self.model, "--prompt", "x", "--seed", "5"], "'--seed' applies to sampling"),
            (["generate", Self.model, "--prompt", "x", "--temperature", "1", "--top-p", "1.5"], "'--top-p' must be in (0, 1]"),
            (["generate", Self.model, "--prompt", "x", "--tokens", "1,2"], "exactly one of"),
            (["generate", Self.model, "--prompt", "x", "--thinking"], "apply to '--chat' only"),
            (["generate", Self.model, "--prompt", "x", "--no-cache"], "'--no-cache' applies to '--tokens' only"),
            (["generate", Self.model, "--tokens", "1,2", "--no-cache", "--temperature", "1"], "plain greedy"),
            (["generate", Self.model, "--prompt", ""], "'--prompt' is empty"),
            (["generate", Self.model, "--chat", good, "--chat-format", "jinja"], "chat-format"),
            (["chat", Self.model, "--min-p", "0.1"], "'--min-p' applies to sampling"),
            (["tokenize", Self.model, "--text", "x", "--thinking"], "apply to '--chat' only"),
            (["tokenize", Self.model, "--text", "x", "--chat", good], "cannot be used together"),
        ]
        for (arguments, mention) in usage {
            let result = try CLI.run(arguments)
            XCTAssertEqual(result.status, 2, "\(arguments): \(result.stderr)")
            XCTAssertTrue(result.stderr.split(separator: "\n").first?.contains(mention) ?? false, "\(arguments): \(result.stderr)")
            XCTAssertEqual(result.stdout, "", "\(arguments)")
        }
    }

    func testAGGUFWithoutTokenizerKeysIsRefusedByName() throws {
        let out = try Fixtures.temporaryFolder() + "/a.gguf"
        XCTAssertEqual(try CLI.run(["convert", Fixtures.folder("ouro-tiny-a"), "-o", out, "--type", "f32"]).status, 0)
        let result = try CLI.run(["generate", out, "--prompt", "x"])
        XCTAssertEqual(result.status, 2)
        XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains(out) && result.stderr.contains("tokenizer"), result.stderr)
    }
}
