import Foundation
import OuroIO
import OuroTokenizer
import XCTest

/// Real chat templates (SmolLM2, Ouro-Thinking, Llama-3, Mistral, Gemma, Qwen2.5, Qwen3) rendered over
/// several conversations by Python's jinja2 under transformers' settings
/// (Scripts/make_template_fixtures.py); ours must give the same bytes, or the same raise_exception.
final class ChatTemplateFixtureTests: XCTestCase {
    static let folder: String = {
        var url = URL(fileURLWithPath: #filePath)
        while url.lastPathComponent != "Tests" { url.deleteLastPathComponent() }
        return url.appendingPathComponent("Fixtures/templates").path
    }()

    static func load(_ name: String) throws -> JSONValue {
        let data = try Data(contentsOf: URL(fileURLWithPath: folder + "/" + name))
        return try data.withUnsafeBytes { try JSONParser.parse($0) }
    }

    func testEveryFixtureRendersByteIdenticalToJinja2() throws {
        guard case let .array(templates) = try Self.load("templates.json"),
              case let .array(conversations) = try Self.load("conversations.json"),
              case let .array(cases) = try Self.load("expected.json") else { return XCTFail("fixture layout") }
        var compiled: [String: (ChatTemplate, [String: String])] = [:]
        for t in templates {
            guard case let .string(name)? = t["name"], case let .string(source)? = t["chat_template"] else { return XCTFail("template entry") }
            var specials: [String: String] = [:]
            for key in ["bos_token", "eos_token"] { if case let .string(v)? = t[key] { specials[key] = v } }
            compiled[name] = (try ChatTemplate(source: source, name: name), specials)
        }
        var messagesByName: [String: [JSONValue]] = [:]
        for c in conversations {
            guard case let .string(name)? = c["name"], case let .array(messages)? = c["messages"] else { return XCTFail("conversation") }
            messagesByName[name] = messages
        }
        var checked = 0, raised = 0
        for c in cases {
            guard case let .string(templateName)? = c["template"], case let .string(conversation)? = c["conversation"],
                  case let .bool(addGenerationPrompt)? = c["add_generation_prompt"],
                  let (template, specials) = compiled[templateName], let messages = messagesByName[conversation] else {
                return XCTFail("case entry")
            }
            var variables: [String: JSONValue] = [:]
            if let thinking = c["enable_thinking"] { variables["enable_thinking"] = thinking }
            let label = "\(templateName) / \(conversation) / add_generation_prompt=\(addGenerationPrompt) / \(variables)"
            if case let .string(expected)? = c["output"] {
                let rendered = try template.render(messages: messages, addGenerationPrompt: addGenerationPrompt,
                                                   specialTokens: specials, variables: variables)
                XCTAssertEqual(Array(rendered.utf8), Array(expected.utf8), "\(label)\nours:  \(rendered.debugDescription)\njinja: \(expected.debugDescription)")
            } else if case let .string(message)? = c["error"] {
                XCTAssertThrowsError(try template.render(messages: messages, addGenerationPrompt: addGenerationPrompt,
                                                         specialTokens: specials, variables: variables), label) { error in
                    XCTAssertEqual(error as? ChatTemplateError, .raised(template: templateName, message: message), label)
                }
                raised += 1
            } else { XCTFail("case without output: \(label)") }
            checked += 1
        }
        XCTAssertEqual(checked, 154)
        XCTAssertEqual(raised, 12)
    }
}
