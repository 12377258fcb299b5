import Foundation

/// An error answered to the client in OpenAI's shape, `{"error": {"message", "type", "code"}}`,
/// with its HTTP status. The server keeps serving after any of these.
public struct APIError: Error, CustomStringConvertible, Sendable {
    public let status: Int
    public let message: String
    /// OpenAI's `type`: invalid_request_error, authentication_error, not_found_error, server_error, ...
    public let type: String
    /// A machine-readable code (OpenAI's `code`), e.g. "invalid_json", "context_length_exceeded".
    public let code: String
    /// Extra response headers (Retry-After on 503).
    public let headers: [(String, String)]

    public init(status: Int, message: String, type: String = "invalid_request_error", code: String, headers: [(String, String)] = []) {
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.headers = headers
    }

    public var description: String { "\(status) \(code): \(message)" }

    static func invalid(_ message: String, code: String = "invalid_request") -> APIError {
        APIError(status: 400, message: message, code: code)
    }

    /// The JSON body.
    public var body: Data {
        let object: [String: Any] = ["error": ["message": message, "type": type, "code": code]]
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
    }
}
