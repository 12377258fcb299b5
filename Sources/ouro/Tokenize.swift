import ArgumentParser
import Foundation
import GGUF
import OuroTokenizer

extension OuroCommand {
    struct Tokenize: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the token ids of a text, with the model's own tokenizer.",
            discussion: """
                The tokenizer comes from the GGUF file's tokenizer.ggml keys, or from a checkpoint \
                folder's tokenizer.json (with tokenizer_config.json). Special tokens written in the \
                text, such as <|im_start|>, become their ids; no bos token is added. The ids are \
                printed comma-separated, ready for `ouro generate --tokens`.
                  ouro tokenize model.gguf --text 'Hello world'
                  ouro tokenize ./Ouro-1.4B --file prompt.txt --json
                  ouro tokenize ./Ouro-1.4B --chat messages.json --json   (the rendered prompt too)
                With --chat, a JSON array of {"role", "content"} messages is rendered with the model's chat \
                template (as `generate --chat` does, assistant turn opened) and the result is tokenized.
                """)

        @Argument(help: "A .gguf file or a checkpoint folder.")
        var model: String

        @Option(help: "The text to tokenize.")
        var text: String?

        @Option(help: "A UTF-8 text file to tokenize.")
        var file: String?

        @Option(name: .customLong("chat"), help: "A JSON file with a conversation, rendered with the chat template.")
        var chatFile: String?

        @OptionGroup var conversation: ConversationArguments

        @Flag(help: "Print {\"ids\": [...]} (with --chat also \"text\": the rendered prompt).")
        var json = false

        @Flag(help: "Also print the encoding speed on stderr (tokens/s and MB/s, loading excluded).")
        var timing = false

        func validate() throws {
            switch [text != nil, file != nil, chatFile != nil].filter({ $0 }).count {
            case 0: throw ValidationError("give the text with '--text' or '--file' (or a conversation with '--chat')")
            case 1: break
            default: throw ValidationError("'--text', '--file' and '--chat' cannot be used together")
            }
            if chatFile == nil && conversation.anyGiven {
                throw ValidationError("'--system', '--thinking' and '--chat-format' apply to '--chat' only")
            }
        }

        func run() throws {
            let (tokenizer, input) = try reportingBadInput { () -> (Tokenizer, String) in
                let tokenizer = try loadTokenizer(model)
                if let chatFile {
                    let messages = try conversation.withSystem(try ChatMessage.load(path: chatFile))
                    return (tokenizer, try conversation.prompt(messages, template: try conversation.template(tokenizer, model: model),
                                                               tokenizer: tokenizer).text)
                }
                return (tokenizer, try text ?? readText(file!))
            }
            let started = DispatchTime.now().uptimeNanoseconds
            let ids = tokenizer.encode(input)
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            if json && chatFile != nil {
                let encoder = JSONEncoder()
                encoder.outputFormatting = .withoutEscapingSlashes
                let quoted = String(decoding: try encoder.encode(input), as: UTF8.self)
                print("{\"ids\": [" + ids.map(String.init).joined(separator: ", ") + "], \"text\": " + quoted + "}")
            } else if json {
                print("{\"ids\": [" + ids.map(String.init).joined(separator: ", ") + "]}")
            } else {
                print(ids.map(String.init).joined(separator: ","))
            }
            if timing {
                let bytes = input.utf8.count
                printError(String(format: "encoded %d bytes into %d tokens in %.3f s: %.0f tokens/s, %.2f MB/s (loading excluded)",
                                  bytes, ids.count, seconds, Double(ids.count) / seconds, Double(bytes) / seconds / 1e6))
            }
        }
    }
}

/// A model argument's tokenizer: a checkpoint folder's tokenizer.json, or a GGUF file's tokenizer keys.
func loadTokenizer(_ path: String) throws -> Tokenizer {
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
        return try Tokenizer.load(folder: path)
    }
    return try Tokenizer(gguf: GGUFFile(path: path))
}

/// A whole text file, which must be UTF-8.
func readText(_ path: String) throws -> String {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw TextFileError(path: path, problem: "cannot be read")
    }
    guard let text = String(data: data, encoding: .utf8) else { throw TextFileError(path: path, problem: "is not valid UTF-8") }
    return text
}

struct TextFileError: Error, CustomStringConvertible {
    let path: String
    let problem: String
    var description: String { "\(path): \(problem)" }
}
