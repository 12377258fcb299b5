import Foundation
import OuroIO
@testable import OuroTokenizer
import XCTest

/// One jinja2 rule per case (whitespace control, loop scoping, Python number formatting, slicing,
/// string methods, filters, tests), rendered by jinja2 in Scripts/make_template_fixtures.py.
final class ChatTemplateFeatureTests: XCTestCase {
    func testEveryFeatureMatchesJinja2OrFailsWhereJinja2Fails() throws {
        let fixture = try ChatTemplateFixtureTests.load("features.json")
        guard case let .object(members)? = fixture["variables"], case let .array(cases)? = fixture["cases"] else {
            return XCTFail("fixture layout")
        }
        let variables = Dictionary(uniqueKeysWithValues: members.filter { $0.key != "messages" }.map { ($0.key, $0.value) })
        guard case let .array(messages)? = fixture["variables"]?["messages"] else { return XCTFail("messages") }
        for c in cases {
            guard case let .string(source)? = c["template"] else { return XCTFail("case") }
            let render = { () throws -> String in
                try ChatTemplate(source: source, name: "feature").render(messages: messages, addGenerationPrompt: false, variables: variables)
            }
            if case let .string(expected)? = c["output"] {
                XCTAssertEqual(try render(), expected, source)
            } else {
                XCTAssertThrowsError(try render(), "jinja2 fails on \(source): \(String(describing: c["error"]))")
            }
        }
        XCTAssertEqual(cases.count, 50)
    }

    func testRaiseExceptionIsAOneLineErrorWithTheTemplatesMessage() throws {
        let template = try ChatTemplate(source: "{% if messages[0].role == 'system' %}{{ raise_exception('System role\nnot supported') }}{% endif %}",
                                        name: "gemma/tokenizer_config.json")
        XCTAssertEqual(try template.render([ChatMessage(role: "user", content: "hi")], addGenerationPrompt: true), "")
        XCTAssertThrowsError(try template.render([ChatMessage(role: "system", content: "x")], addGenerationPrompt: true)) { error in
            XCTAssertEqual(error as? ChatTemplateError, .raised(template: "gemma/tokenizer_config.json", message: "System role\nnot supported"))
            let text = "\(error)"
            XCTAssertFalse(text.contains("\n"), text)
            XCTAssertTrue(text.hasPrefix("chat template gemma/tokenizer_config.json refuses the conversation: System role"), text)
        }
    }

    /// A construct outside the implemented subset is an error naming it (and the template), at parse
    /// time where jinja2 would find it at compile time, else when it runs.
    func testUnsupportedConstructsAreNamedErrors() {
        let cases: [(String, String)] = [
            ("{% macro greet(x) %}hi{% endmacro %}", "{% macro %} statement"),
            ("{% include 'other.jinja' %}", "{% include %} statement"),
            ("{% raw %}{{ x }}{% endraw %}", "{% raw %}"),
            ("{{ messages | map(attribute='role') | join }}", "filter 'map'"),
            ("{{ messages | selectattr('role', 'equalto', 'user') | list }}", "filter 'selectattr'"),
            ("{% if x is callable %}{% endif %}", "test 'callable'"),
            ("{% for m in messages recursive %}{% endfor %}", "recursive for loops"),
        ]
        for (source, construct) in cases {
            XCTAssertThrowsError(try ChatTemplate(source: source, name: "t.json"), source) { error in
                guard case let .unsupported(template, _, found)? = error as? ChatTemplateError else { return XCTFail("\(source): \(error)") }
                XCTAssertEqual(template, "t.json")
                XCTAssertEqual(found, construct, source)
                XCTAssertTrue("\(error)".contains("unsupported \(construct)"), "\(error)")
            }
        }
        let atRuntime: [(String, String)] = [
            ("{{ strftime_now('%d %b %Y') }}", "function strftime_now (the date is not reproducible)"),
            ("{{ 'a b'.title() }}", "string method title()"),
            ("{{ loop.cycle('a', 'b') }}", ""),
            ("{{ messages[0].items }}", "printing a function object"),
            ("{{ 'x %s' % 1 }}", "'%' string formatting"),
            ("{% for m in messages %}{{ loop.cycle('odd', 'even') }}{% endfor %}", "loop.cycle()"),
        ]
        for (source, construct) in atRuntime {
            XCTAssertThrowsError(try ChatTemplate(source: source, name: "t.json")
                .render([ChatMessage(role: "user", content: "hi")], addGenerationPrompt: false), source) { error in
                if construct.isEmpty { return }   // an error of any kind
                guard case let .unsupported(_, line, found)? = error as? ChatTemplateError else { return XCTFail("\(source): \(error)") }
                XCTAssertEqual(found, construct, source)
                XCTAssertEqual(line, 1)
            }
        }
    }

    func testSyntaxErrorsNameTheTemplateAndLine() {
        for source in ["{% if x %}no end", "{{ 1 + }}", "a\n{% for %}", "{{ 'unterminated }}", "{# open comment", "{% endfor %}"] {
            XCTAssertThrowsError(try ChatTemplate(source: source, name: "model.gguf"), source) { error in
                guard case .syntax? = error as? ChatTemplateError else { return XCTFail("\(source): \(error)") }
                XCTAssertTrue("\(error)".hasPrefix("chat template model.gguf: line "), "\(error)")
                XCTAssertFalse("\(error)".contains("\n"))
            }
        }
    }

    func testChatMLFallbackLayout() throws {
        let text = try ChatTemplate.chatML.render([ChatMessage(role: "system", content: "S"), ChatMessage(role: "user", content: "U")],
                                                  addGenerationPrompt: true)
        XCTAssertEqual(text, "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n")
    }

    func testHostileTemplatesFailInsteadOfExhaustingMemoryOrStack() {
        XCTAssertThrowsError(try ChatTemplate(source: "{{ 'x' * 1000000000 }}", name: "t").render([], addGenerationPrompt: false))
        XCTAssertThrowsError(try ChatTemplate(source: "{{ " + String(repeating: "(", count: 500) + "1" + String(repeating: ")", count: 500) + " }}", name: "t"))
        XCTAssertThrowsError(try ChatTemplate(source: String(repeating: "{% if 1 %}", count: 500), name: "t"))
        XCTAssertThrowsError(try ChatTemplate(source: "{{ range(10000000) | list }}", name: "t").render([], addGenerationPrompt: false))
        for chain in [String(repeating: "not ", count: 5_000) + "x", String(repeating: "-", count: 5_000) + "1",
                      Array(repeating: "1", count: 5_000).joined(separator: " + "), Array(repeating: "'a'", count: 5_000).joined(separator: " ~ "),
                      "x" + String(repeating: "|trim", count: 5_000), "x" + String(repeating: ".a", count: 5_000),
                      String(repeating: "[", count: 5_000) + String(repeating: "]", count: 5_000)] {
            XCTAssertThrowsError(try ChatTemplate(source: "{{ " + chain + " }}", name: "t"), String(chain.prefix(20)))
        }
        let deepValue = "{% set ns = namespace(x=1) %}{% for i in range(1000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x }}"
        XCTAssertThrowsError(try ChatTemplate(source: deepValue, name: "t").render([], addGenerationPrompt: false))
        let cycle = "{% set ns = namespace(x=1) %}{% set ns.x = [ns] %}{{ ns.x }}"
        XCTAssertThrowsError(try ChatTemplate(source: cycle, name: "t").render([], addGenerationPrompt: false))
        // Ordinary chains stay well inside the limits.
        XCTAssertEqual(try ChatTemplate(source: "{{ " + Array(repeating: "1", count: 100).joined(separator: " + ") + " }}", name: "t")
            .render([], addGenerationPrompt: false), "100")
    }
}
