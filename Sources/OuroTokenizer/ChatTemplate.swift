import OuroIO

/// One message of a conversation.
public struct ChatMessage: Sendable, Equatable {
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }

    /// Roles the CLI accepts in a messages file (the ones chat templates know).
    public static let roles: Set<String> = ["system", "user", "assistant", "tool"]
}

/// Why a chat template could not be parsed or rendered. `description` is one line naming the template
/// (the file it came from) and, where known, the line in the template.
public enum ChatTemplateError: Error, CustomStringConvertible, Equatable {
    /// The text is not a valid template.
    case syntax(template: String, message: String)
    /// The template uses a construct this renderer does not implement (named), so it refuses rather
    /// than render differently from jinja2.
    case unsupported(template: String, line: Int?, construct: String)
    /// Rendering failed as it would in jinja2 (an undefined value used, a type error).
    case evaluation(template: String, line: Int, message: String)
    /// The template called `raise_exception(message)`, e.g. "Conversation roles must alternate".
    case raised(template: String, message: String)

    public var description: String {
        switch self {
        case let .syntax(template, message):
            return singleLine("chat template \(template): \(message)")
        case let .unsupported(template, line, construct):
            return singleLine("chat template \(template)\(line.map { " line \($0)" } ?? ""): unsupported \(construct)")
        case let .evaluation(template, line, message):
            return singleLine("chat template \(template) line \(line): \(message)")
        case let .raised(template, message):
            return singleLine("chat template \(template) refuses the conversation: \(message)")
        }
    }
}

/// A Hugging Face chat template (`tokenizer_config.json` `chat_template`, GGUF `tokenizer.chat_template`),
/// rendered as transformers' `apply_chat_template` renders it with jinja2 (trim_blocks, lstrip_blocks,
/// loop controls, `raise_exception`, json.dumps-style `tojson`), for the subset of Jinja real chat
/// templates use. Anything outside that subset is an error naming it, never different text.
public struct ChatTemplate: @unchecked Sendable {
    /// Where the template came from (a file path, or "chatml"), for error messages.
    public let name: String
    public let source: String
    private let nodes: [JinjaNode]

    /// Parses `source`; syntax errors and unsupported statements, filters and tests are found here.
    public init(source: String, name: String) throws {
        self.name = name
        self.source = source
        do {
            nodes = try JinjaParser.parse(source)
        } catch let failure as JinjaFailure {
            throw Self.error(failure, template: name, line: nil)
        }
    }

    /// The classic ChatML layout (`<|im_start|>role\ncontent<|im_end|>\n`), for models without a
    /// template (`--chat-format chatml`).
    public static let chatML: ChatTemplate = try! ChatTemplate(
        source: "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
            + "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
        name: "chatml")

    /// Renders `messages` (any JSON objects; templates read `role`, `content` and sometimes more).
    /// `specialTokens` are passed as variables (`bos_token`, `eos_token`); `variables` adds others,
    /// e.g. `enable_thinking`. `tools` and `documents` are None, as transformers passes without tools.
    public func render(messages: [JSONValue], addGenerationPrompt: Bool, specialTokens: [String: String] = [:],
                       variables: [String: JSONValue] = [:]) throws -> String {
        var context: [String: JinjaValue] = [
            "messages": .list(messages.map(JinjaValue.init(json:))),
            "add_generation_prompt": .bool(addGenerationPrompt),
            "tools": .none,
            "documents": .none,
        ]
        for (k, v) in specialTokens { context[k] = .string(v) }
        for (k, v) in variables { context[k] = JinjaValue(json: v) }
        let interpreter = JinjaInterpreter()
        do {
            return try interpreter.render(nodes, variables: context)
        } catch let failure as JinjaFailure {
            throw Self.error(failure, template: name, line: interpreter.line)
        }
    }

    /// Renders plain role/content messages; `enableThinking` nil leaves `enable_thinking` undefined
    /// (each template's own default).
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool, bosToken: String? = nil,
                       eosToken: String? = nil, enableThinking: Bool? = nil) throws -> String {
        var specials: [String: String] = [:]
        if let bosToken { specials["bos_token"] = bosToken }
        if let eosToken { specials["eos_token"] = eosToken }
        var variables: [String: JSONValue] = [:]
        if let enableThinking { variables["enable_thinking"] = .bool(enableThinking) }
        return try render(messages: messages.map { .object([("role", .string($0.role)), ("content", .string($0.content))]) },
                          addGenerationPrompt: addGenerationPrompt, specialTokens: specials, variables: variables)
    }

    private static func error(_ failure: JinjaFailure, template: String, line: Int?) -> ChatTemplateError {
        switch failure {
        case let .syntax(message): return .syntax(template: template, message: message)
        case let .unsupported(construct): return .unsupported(template: template, line: line, construct: construct)
        case let .evaluation(message): return .evaluation(template: template, line: line ?? 1, message: message)
        case let .raised(message): return .raised(template: template, message: message)
        }
    }
}
