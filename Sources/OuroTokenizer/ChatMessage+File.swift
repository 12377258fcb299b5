import Foundation
import OuroIO

extension ChatMessage {
    /// Reads a conversation file: a JSON array of `{"role": ..., "content": ...}` objects, roles among
    /// `ChatMessage.roles`. Errors name the file and the item.
    public static func load(path: String) throws -> [ChatMessage] {
        let file: MappedFile
        do { file = try MappedFile(path: path) } catch {
            throw TokenizerError.badFile(path: path, reason: "cannot be read (\(error))")
        }
        guard isValidUTF8(file.bytes) else { throw TokenizerError.badFile(path: path, reason: "is not valid UTF-8") }
        let json: JSONValue
        do { json = try JSONParser.parse(file.bytes) } catch let failure as JSONParser.Failure {
            throw TokenizerError.badFile(path: path, reason: "is not valid JSON: \(failure.reason)")
        }
        return try messages(json, path: path)
    }

    static func messages(_ json: JSONValue, path: String) throws -> [ChatMessage] {
        func fail(_ reason: String) -> TokenizerError { .badFile(path: path, reason: reason) }
        guard case let .array(items) = json else {
            throw fail("must be a JSON array of {\"role\", \"content\"} objects, not \(json.kindName)")
        }
        guard !items.isEmpty else { throw fail("has no messages") }
        return try items.enumerated().map { index, item in
            guard case let .object(members) = item else { throw fail("message \(index) is \(item.kindName), not an object") }
            guard case let .string(role)? = item["role"] else { throw fail("message \(index) has no \"role\" string") }
            guard roles.contains(role) else {
                throw fail("message \(index) has unknown role \(quotedForMessage(role)) (use \(roles.sorted().joined(separator: ", ")))")
            }
            guard case let .string(content)? = item["content"] else { throw fail("message \(index) has no \"content\" string") }
            if let extra = members.first(where: { $0.key != "role" && $0.key != "content" }) {
                throw fail("message \(index) has key \(quotedForMessage(extra.key)); only \"role\" and \"content\" are read")
            }
            return ChatMessage(role: role, content: content)
        }
    }
}
