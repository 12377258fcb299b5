/// A parsed JSON value. Objects keep their members in file order; numbers keep their source text so
/// integers are read exactly (no Double or NSNumber round trip, no Bool/number confusion).
public enum JSONValue: Sendable {
    case object([(key: String, value: JSONValue)])
    case array([JSONValue])
    case string(String)
    case number(String)
    case bool(Bool)
    case null

    /// What kind of value this is, for error messages.
    public var kindName: String {
        switch self {
        case .object: return "an object"
        case .array: return "an array"
        case .string: return "a string"
        case .number: return "a number"
        case .bool: return "a boolean"
        case .null: return "null"
        }
    }

    /// The value of a member of an object (the first one; parsed objects have unique keys).
    public subscript(key: String) -> JSONValue? {
        guard case let .object(members) = self else { return nil }
        return members.first(where: { $0.key == key })?.value
    }

    /// The exact value of an integer written without fraction or exponent, if it fits in Int.
    public var integer: IntegerReading {
        guard case let .number(text) = self else { return .notNumber }
        guard !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) else { return .notInteger }
        guard let value = Int(text) else { return .outOfRange }
        return .value(value)
    }

    public enum IntegerReading: Equatable {
        case value(Int)
        case notNumber
        case notInteger
        case outOfRange
    }

    /// A non-negative Int, or a short phrase saying why the value is not one.
    public func nonNegativeInt() -> (value: Int?, problem: String) {
        switch integer {
        case let .value(v) where v >= 0: return (v, "")
        case let .value(v): return (nil, "is negative (\(v))")
        case .notNumber: return (nil, "is \(kindName), not an integer")
        case .notInteger: return (nil, "is not an integer (\(Self.clipped(self)))")
        case .outOfRange: return (nil, "is too large (\(Self.clipped(self)))")
        }
    }

    private static func clipped(_ value: JSONValue) -> String {
        guard case let .number(text) = value else { return value.kindName }
        return text.count > 40 ? String(text.prefix(40)) + "…" : text
    }
}
