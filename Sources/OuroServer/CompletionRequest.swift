import Foundation
import OuroIO
import OuroModel
import OuroTokenizer

/// A parsed POST /v1/chat/completions or /v1/completions body. Parsing is strict: wrong types,
/// missing required fields and values outside their range are 400s naming the field; options this
/// server does not implement are refused when set to anything but their neutral value, never ignored.
public struct CompletionRequest: Sendable {
    public enum Input: Sendable {
        case messages([ChatMessage])
        case text(String)
        case tokenIDs([Int])
    }

    public var model: String
    public var input: Input
    public var maxTokens: Int?
    public var sampling = SamplingOptions(temperature: 1)
    public var stop: [String] = []
    public var stream = false
    public var includeUsageInStream = false
    public var exit: ExitMode?

    /// Parses `body` for the chat endpoint (`chat` true) or the completions endpoint.
    public static func parse(_ body: Data, chat: Bool) throws -> CompletionRequest {
        let root: JSONValue
        do {
            root = try body.withUnsafeBytes { try JSONParser.parse($0) }
        } catch let failure as JSONParser.Failure {
            throw APIError.invalid("the request body is not valid JSON: \(failure.reason)", code: "invalid_json")
        } catch {
            throw APIError.invalid("the request body is not valid JSON", code: "invalid_json")
        }
        guard case .object = root else {
            throw APIError.invalid("the request body must be a JSON object, not \(root.kindName)", code: "invalid_json")
        }
        let fields = Fields(root)

        guard let model = try fields.string("model") else { throw APIError.invalid("'model' is required", code: "missing_field") }
        let input: Input
        if chat {
            guard let value = root["messages"] else { throw APIError.invalid("'messages' is required", code: "missing_field") }
            input = .messages(try parseMessages(value))
        } else {
            guard let value = root["prompt"] else { throw APIError.invalid("'prompt' is required", code: "missing_field") }
            input = try parsePrompt(value)
        }
        var request = CompletionRequest(model: model, input: input)

        if let n = try fields.integer("n"), n != 1 { throw APIError.invalid("'n' must be 1 (one choice per request)", code: "unsupported_value") }
        let maxTokens = try fields.integer(chat ? "max_completion_tokens" : "max_tokens") ?? fields.integer("max_tokens")
        if let maxTokens, maxTokens < 1 { throw APIError.invalid("'max_tokens' must be 1 or more", code: "invalid_value") }
        request.maxTokens = maxTokens
        if let temperature = try fields.number("temperature") {
            guard temperature >= 0 && temperature <= 2 else { throw APIError.invalid("'temperature' must be in [0, 2]", code: "invalid_value") }
            request.sampling.temperature = Float(temperature)
        }
        if let topP = try fields.number("top_p") {
            guard topP > 0 && topP <= 1 else { throw APIError.invalid("'top_p' must be in (0, 1]", code: "invalid_value") }
            request.sampling.topP = Float(topP)
        }
        if let seed = try fields.integer("seed") {
            request.sampling.seed = UInt64(bitPattern: Int64(seed))
        } else {
            request.sampling.seed = UInt64.random(in: 0...UInt64.max)
        }
        if let stop = root["stop"] {
            switch stop {
            case .null: break
            case let .string(s): request.stop = [s]
            case let .array(items):
                request.stop = try items.map {
                    guard case let .string(s) = $0 else { throw APIError.invalid("'stop' must be a string or an array of strings", code: "invalid_type") }
                    return s
                }
            default: throw APIError.invalid("'stop' must be a string or an array of strings, not \(stop.kindName)", code: "invalid_type")
            }
            guard request.stop.count <= 4 else { throw APIError.invalid("'stop' takes at most 4 strings", code: "invalid_value") }
            guard !request.stop.contains("") else { throw APIError.invalid("'stop' strings must not be empty", code: "invalid_value") }
        }
        request.stream = try fields.bool("stream") ?? false
        if let options = root["stream_options"], case .object = options {
            request.includeUsageInStream = try Fields(options, prefix: "stream_options.").bool("include_usage") ?? false
        } else if let options = root["stream_options"], case .null = options {
        } else if let options = root["stream_options"] {
            throw APIError.invalid("'stream_options' must be an object, not \(options.kindName)", code: "invalid_type")
        }
        if let ouro = root["ouro"] {
            guard case .object = ouro else { throw APIError.invalid("'ouro' must be an object, not \(ouro.kindName)", code: "invalid_type") }
            if let text = try Fields(ouro, prefix: "ouro.").string("exit") {
                guard let mode = ExitMode(argument: text) else {
                    throw APIError.invalid("'ouro.exit' must be last, step:K (1-based), threshold:Q (0 < Q <= 1) or weighted; got \(text)", code: "invalid_value")
                }
                request.exit = mode
            }
        }
        // Options that would change the answer and are not implemented: refused unless neutral.
        for name in ["frequency_penalty", "presence_penalty"] {
            if let value = try fields.number(name), value != 0 { throw APIError.invalid("'\(name)' is not supported (only 0)", code: "unsupported_parameter") }
        }
        for name in ["logprobs", "echo"] {
            if let value = root[name], !value.isNeutral { throw APIError.invalid("'\(name)' is not supported", code: "unsupported_parameter") }
        }
        for name in ["logit_bias", "tools", "tool_choice", "functions", "function_call", "top_logprobs", "suffix"] {
            if let value = root[name], !value.isNeutral { throw APIError.invalid("'\(name)' is not supported", code: "unsupported_parameter") }
        }
        if let bestOf = try fields.integer("best_of"), bestOf != 1 { throw APIError.invalid("'best_of' must be 1", code: "unsupported_value") }
        if let format = root["response_format"], !format.isNeutral {
            guard case .object = format, case .string("text")? = format["type"] else {
                throw APIError.invalid("'response_format' other than {\"type\": \"text\"} is not supported", code: "unsupported_parameter")
            }
        }
        return request
    }

    private static func parseMessages(_ value: JSONValue) throws -> [ChatMessage] {
        guard case let .array(items) = value else { throw APIError.invalid("'messages' must be an array, not \(value.kindName)", code: "invalid_type") }
        guard !items.isEmpty else { throw APIError.invalid("'messages' is empty", code: "invalid_value") }
        return try items.enumerated().map { index, item in
            guard case .object = item else { throw APIError.invalid("'messages[\(index)]' must be an object, not \(item.kindName)", code: "invalid_type") }
            let fields = Fields(item, prefix: "messages[\(index)].")
            guard let role = try fields.string("role") else { throw APIError.invalid("'messages[\(index)].role' is required", code: "missing_field") }
            let role2 = role == "developer" ? "system" : role
            guard ChatMessage.roles.contains(role2) else {
                throw APIError.invalid("'messages[\(index)].role' must be system, developer, user, assistant or tool; got \(role)", code: "invalid_value")
            }
            guard let content = item["content"] else { throw APIError.invalid("'messages[\(index)].content' is required", code: "missing_field") }
            switch content {
            case let .string(text): return ChatMessage(role: role2, content: text)
            case let .array(parts):
                // Content parts: only text parts ({"type": "text", "text": ...}) can be rendered.
                let texts = try parts.enumerated().map { p, part -> String in
                    guard case .string("text")? = part["type"], case let .string(text)? = part["text"] else {
                        throw APIError.invalid("'messages[\(index)].content[\(p)]' must be a text part {\"type\": \"text\", \"text\": ...}", code: "invalid_type")
                    }
                    return text
                }
                return ChatMessage(role: role2, content: texts.joined())
            default:
                throw APIError.invalid("'messages[\(index)].content' must be a string or an array of text parts, not \(content.kindName)", code: "invalid_type")
            }
        }
    }

    private static func parsePrompt(_ value: JSONValue) throws -> Input {
        switch value {
        case let .string(text): return .text(text)
        case let .array(items):
            if items.count == 1, case let .string(text) = items[0] { return .text(text) }
            if items.count == 1, case let .array(inner) = items[0] { return try parsePrompt(.array(inner)) }
            guard !items.isEmpty else { throw APIError.invalid("'prompt' is empty", code: "invalid_value") }
            let ids = try items.enumerated().map { index, item -> Int in
                guard case let .value(id) = item.integer else {
                    throw APIError.invalid("'prompt' must be a string, an array of token ids or one of either (one prompt per request); prompt[\(index)] is \(item.kindName)", code: "invalid_type")
                }
                return id
            }
            return .tokenIDs(ids)
        default:
            throw APIError.invalid("'prompt' must be a string or an array of token ids, not \(value.kindName)", code: "invalid_type")
        }
    }
}

/// Typed reads of an object's optional fields; a present field of the wrong type is a 400 naming it.
private struct Fields {
    let object: JSONValue
    let prefix: String
    init(_ object: JSONValue, prefix: String = "") {
        self.object = object
        self.prefix = prefix
    }

    func string(_ key: String) throws -> String? {
        guard let value = object[key] else { return nil }
        if case .null = value { return nil }
        guard case let .string(s) = value else { throw wrongType(key, "a string", value) }
        return s
    }

    func bool(_ key: String) throws -> Bool? {
        guard let value = object[key] else { return nil }
        if case .null = value { return nil }
        guard case let .bool(b) = value else { throw wrongType(key, "a boolean", value) }
        return b
    }

    func integer(_ key: String) throws -> Int? {
        guard let value = object[key] else { return nil }
        if case .null = value { return nil }
        switch value.integer {
        case let .value(v): return v
        case .notNumber: throw wrongType(key, "an integer", value)
        case .notInteger: throw APIError.invalid("'\(prefix)\(key)' must be an integer", code: "invalid_type")
        case .outOfRange: throw APIError.invalid("'\(prefix)\(key)' is out of range", code: "invalid_value")
        }
    }

    func number(_ key: String) throws -> Double? {
        guard let value = object[key] else { return nil }
        if case .null = value { return nil }
        guard case let .number(text) = value, let number = Double(text), number.isFinite else { throw wrongType(key, "a number", value) }
        return number
    }

    private func wrongType(_ key: String, _ expected: String, _ value: JSONValue) -> APIError {
        APIError.invalid("'\(prefix)\(key)' must be \(expected), not \(value.kindName)", code: "invalid_type")
    }
}

extension JSONValue {
    /// null, false, 0, "" or an empty array/object: the value that asks for nothing.
    var isNeutral: Bool {
        switch self {
        case .null: return true
        case let .bool(b): return !b
        case let .number(text): return Double(text) == 0
        case let .string(s): return s.isEmpty
        case let .array(a): return a.isEmpty
        case let .object(o): return o.isEmpty
        }
    }
}

extension ExitMode {
    /// `last`, `step:K` (1-based), `threshold:Q` or `weighted`, as the CLI's --exit.
    public init?(argument: String) {
        let parts = argument.split(separator: ":", maxSplits: 1).map(String.init)
        switch (parts.first, parts.count) {
        case ("last", 1): self = .lastStep
        case ("weighted", 1): self = .weighted
        case ("step", 2):
            guard let k = Int(parts[1]), k >= 1 else { return nil }
            self = .step(k - 1)
        case ("threshold", 2):
            guard let q = Float(parts[1]), q > 0, q <= 1 else { return nil }
            self = .threshold(q)
        default: return nil
        }
    }

    /// The inverse of `init(argument:)`.
    public var argument: String {
        switch self {
        case .lastStep: return "last"
        case .weighted: return "weighted"
        case let .step(k): return "step:\(k + 1)"
        case let .threshold(q): return "threshold:\(q)"
        }
    }
}
