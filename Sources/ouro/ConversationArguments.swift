import ArgumentParser
import Foundation
import OuroIO
import OuroModel
import OuroTokenizer

/// How a conversation becomes the prompt: the model's chat template (or ChatML), a system message,
/// and `enable_thinking` for the Thinking models.
struct ConversationArguments: ParsableArguments {
    enum ChatFormat: String, ExpressibleByArgument, CaseIterable {
        case model, chatml
    }

    @Option(help: "A system message placed before the conversation.")
    var system: String?

    @Flag(inversion: .prefixedNo, help: "Set the template's enable_thinking (Thinking models reason in <think> first); default: the template's own.")
    var thinking: Bool?

    @Option(help: "model: the chat template of the model's tokenizer (default); chatml: plain ChatML, for models without one.")
    var chatFormat: ChatFormat = .model

    /// Whether any of these options was given (they apply to conversations only).
    var anyGiven: Bool { system != nil || thinking != nil || chatFormat != .model }

    /// The template to render with: the model's, ChatML when asked, an error when the model has none.
    func template(_ tokenizer: Tokenizer, model: String) throws -> ChatTemplate {
        if chatFormat == .chatml { return ChatTemplate.chatML }
        var isDirectory: ObjCBool = false
        let folder = FileManager.default.fileExists(atPath: model, isDirectory: &isDirectory) && isDirectory.boolValue
        var name = model + " (tokenizer.chat_template)"
        if folder {
            // The tokenizer reads tokenizer_config.json's template, else chat_template.jinja: name that file.
            let config = model + "/tokenizer_config.json", jinja = model + "/chat_template.jinja"
            let configHasTemplate = (try? String(contentsOfFile: config, encoding: .utf8))?.contains("\"chat_template\"") ?? false
            name = !configHasTemplate && FileManager.default.fileExists(atPath: jinja) ? jinja : config
        }
        guard let source = tokenizer.chatTemplate else {
            throw CLIError("\(name): the model has no chat template; pass '--chat-format chatml' to use ChatML")
        }
        return try ChatTemplate(source: source, name: name)
    }

    /// `messages` with the --system message first (refused when the conversation already has one).
    func withSystem(_ messages: [ChatMessage]) throws -> [ChatMessage] {
        guard let system else { return messages }
        if messages.first?.role == "system" { throw CLIError("'--system' given but the conversation already starts with a system message") }
        return [ChatMessage(role: "system", content: system)] + messages
    }

    /// The rendered prompt (ending with the assistant's turn opening) and its ids.
    func prompt(_ messages: [ChatMessage], template: ChatTemplate, tokenizer: Tokenizer) throws -> (text: String, ids: [Int]) {
        let text = try template.render(messages, addGenerationPrompt: true, bosToken: tokenizer.bosToken,
                                       eosToken: tokenizer.eosToken, enableThinking: thinking)
        // As transformers' apply_chat_template: the template writes any bos token itself.
        return (text, tokenizer.encode(text))
    }
}

/// A one-line usage or input problem found by the CLI itself (printed as `ouro: <message>`, exit 2).
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = singleLine(message) }
}
