import Foundation
import OuroIO

/// A value as a chat template sees it. jinja2 runs on Python objects, so every operation here follows
/// Python's rules (truthiness, `==` across int/float/bool, `str()`, `repr()`), and strings are indexed
/// by Unicode scalar, as Python indexes `str` by code point.
indirect enum JinjaValue {
    /// jinja2's default `Undefined`: prints as "", is false, iterates as empty; any attribute access on
    /// it is an error. Carries the name it was looked up by, for messages.
    case undefined(String)
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case list([JinjaValue])
    case tuple([JinjaValue])
    case dict(JinjaDict)
    /// `namespace(...)`: the one mutable object templates can assign attributes on.
    case namespace(JinjaNamespace)
    case loop(LoopState)
    /// A global function (`raise_exception`, `namespace`, `range`) or a bound method (`'a'.strip`).
    case callable(JinjaCallable)

    init(json: JSONValue) {
        switch json {
        case let .object(members): self = .dict(JinjaDict(members.map { ($0.key, JinjaValue(json: $0.value)) }))
        case let .array(items): self = .list(items.map(JinjaValue.init(json:)))
        case let .string(s): self = .string(s)
        case let .number(text):
            if let i = Int(text) { self = .int(i) } else { self = .double(Double(text) ?? .nan) }
        case let .bool(b): self = .bool(b)
        case .null: self = .none
        }
    }

    var isUndefined: Bool { if case .undefined = self { return true } else { return false } }

    /// Python's type name, for error messages that match what jinja2 would complain about.
    var typeName: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float"
        case .string: return "str"
        case .list: return "list"
        case .tuple: return "tuple"
        case .dict: return "dict"
        case .namespace: return "Namespace"
        case .loop: return "LoopContext"
        case .callable: return "function"
        }
    }

    /// Python truthiness (`bool(x)`); Undefined is false.
    var truthy: Bool {
        switch self {
        case .undefined, .none: return false
        case let .bool(b): return b
        case let .int(i): return i != 0
        case let .double(d): return d != 0
        case let .string(s): return !s.isEmpty
        case let .list(items), let .tuple(items): return !items.isEmpty
        case let .dict(d): return !d.isEmpty
        case .namespace, .loop, .callable: return true
        }
    }

    /// A number as Python sees it in arithmetic: bool is an int.
    var numeric: Numeric? {
        switch self {
        case let .bool(b): return .int(b ? 1 : 0)
        case let .int(i): return .int(i)
        case let .double(d): return .double(d)
        default: return nil
        }
    }

    enum Numeric {
        case int(Int)
        case double(Double)
        var double: Double {
            switch self {
            case let .int(i): return Double(i)
            case let .double(d): return d
            }
        }
    }

    /// Python `str(x)` (jinja2 prints with it; Undefined prints as "").
    func text() throws -> String {
        switch self {
        case .undefined: return ""
        case let .string(s): return s
        default: return try repr()
        }
    }

    /// Python `repr(x)`, which `str()` of containers uses for their items.
    func repr() throws -> String {
        switch self {
        case .undefined: return ""
        case .none: return "None"
        case let .bool(b): return b ? "True" : "False"
        case let .int(i): return String(i)
        case let .double(d): return PythonFloat.repr(d)
        case let .string(s): return PythonString.repr(s)
        case let .list(items): return "[" + (try items.map { try $0.repr() }).joined(separator: ", ") + "]"
        case let .tuple(items):
            let inner = try items.map { try $0.repr() }
            return "(" + inner.joined(separator: ", ") + (items.count == 1 ? ",)" : ")")
        case let .dict(d):
            return "{" + (try d.members.map { "\(PythonString.repr($0.key)): \(try $0.value.repr())" }).joined(separator: ", ") + "}"
        case .namespace, .loop, .callable:
            throw JinjaFailure.unsupported("printing a \(typeName) object")
        }
    }

    /// Whether containers nest deeper than `limit` (namespaces count as leaves: they are references,
    /// and can contain themselves).
    func nests(deeperThan limit: Int) -> Bool {
        guard limit > 0 else { return true }
        switch self {
        case let .list(items), let .tuple(items): return items.contains { $0.nests(deeperThan: limit - 1) }
        case let .dict(d): return d.members.contains { $0.value.nests(deeperThan: limit - 1) }
        default: return false
        }
    }

    /// Python `==`.
    func equals(_ other: JinjaValue) -> Bool {
        if let a = numeric, let b = other.numeric {
            if case let .int(x) = a, case let .int(y) = b { return x == y }
            return a.double == b.double
        }
        switch (self, other) {
        case (.undefined, .undefined), (.none, .none): return true
        case let (.string(a), .string(b)): return a.unicodeScalars.elementsEqual(b.unicodeScalars)
        case let (.list(a), .list(b)), let (.tuple(a), .tuple(b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.equals($1) }
        case let (.dict(a), .dict(b)):
            return a.count == b.count && a.members.allSatisfy { m in b[m.key].map { m.value.equals($0) } ?? false }
        case let (.namespace(a), .namespace(b)): return a === b
        default: return false
        }
    }

    /// Python ordering (`<`); mixed types are a TypeError.
    func less(than other: JinjaValue) throws -> Bool {
        if let a = numeric, let b = other.numeric {
            if case let .int(x) = a, case let .int(y) = b { return x < y }
            return a.double < b.double
        }
        switch (self, other) {
        case let (.string(a), .string(b)): return a.unicodeScalars.lexicographicallyPrecedes(b.unicodeScalars)
        case let (.list(a), .list(b)), let (.tuple(a), .tuple(b)):
            for (x, y) in zip(a, b) where !x.equals(y) { return try x.less(than: y) }
            return a.count < b.count
        default:
            throw JinjaFailure.evaluation("'<' not supported between instances of '\(typeName)' and '\(other.typeName)'")
        }
    }

    /// The items a `for` loop (or `in`, or `list`) walks: a dict yields its keys, a string its characters.
    func iterated() throws -> [JinjaValue] {
        switch self {
        case .undefined: return []
        case let .list(items), let .tuple(items): return items
        case let .dict(d): return d.members.map { .string($0.key) }
        case let .string(s): return s.unicodeScalars.map { .string(String($0)) }
        default: throw JinjaFailure.evaluation("'\(typeName)' object is not iterable")
        }
    }
}

/// A Python dict with string keys, in insertion order (JSON objects and `{...}` literals).
struct JinjaDict {
    private(set) var members: [(key: String, value: JinjaValue)] = []
    private var index: [String: Int] = [:]

    init(_ pairs: [(String, JinjaValue)] = []) {
        for (k, v) in pairs { self[k] = v }
    }

    var count: Int { members.count }
    var isEmpty: Bool { members.isEmpty }

    subscript(key: String) -> JinjaValue? {
        get { index[key].map { members[$0].value } }
        set {
            if let i = index[key] {
                if let v = newValue { members[i].value = v } else {
                    members.remove(at: i)
                    index = Dictionary(uniqueKeysWithValues: members.enumerated().map { ($1.key, $0) })
                }
            } else if let v = newValue {
                index[key] = members.count
                members.append((key, v))
            }
        }
    }
}

final class JinjaNamespace {
    var members: JinjaDict
    init(_ members: JinjaDict) { self.members = members }
}

/// jinja2's `loop` variable.
struct LoopState {
    let index0: Int
    let length: Int
    let previous: JinjaValue?
    let next: JinjaValue?

    func attribute(_ name: String) throws -> JinjaValue {
        switch name {
        case "index": return .int(index0 + 1)
        case "index0": return .int(index0)
        case "revindex": return .int(length - index0)
        case "revindex0": return .int(length - index0 - 1)
        case "first": return .bool(index0 == 0)
        case "last": return .bool(index0 == length - 1)
        case "length": return .int(length)
        case "previtem": return previous ?? .undefined("loop.previtem")
        case "nextitem": return next ?? .undefined("loop.nextitem")
        case "depth": return .int(1)
        case "depth0": return .int(0)
        default: throw JinjaFailure.unsupported("loop.\(name)")
        }
    }
}

struct JinjaCallable {
    let name: String
    let call: ([JinjaValue], [(String, JinjaValue)]) throws -> JinjaValue
}

/// What went wrong while parsing or rendering; `ChatTemplate` adds the template name and line.
enum JinjaFailure: Error {
    case syntax(String)
    case unsupported(String)
    case evaluation(String)
    /// `raise_exception(message)` in the template.
    case raised(String)
}

/// Python's `repr(float)`: the shortest digits that round-trip, in fixed notation for decimal
/// exponents -4 ..< 16 and scientific (`1e+16`, `1e-05`) outside.
enum PythonFloat {
    static func repr(_ x: Double) -> String {
        if x.isNaN { return "nan" }
        if x.isInfinite { return x < 0 ? "-inf" : "inf" }
        if x == 0 { return x.sign == .minus ? "-0.0" : "0.0" }
        // Swift's description already holds the shortest round-trip digits; only the layout differs.
        var text = x.magnitude.description
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exponent = Int(text[text.index(after: e)...]) ?? 0
            text = String(text[..<e])
        }
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        let integerPart = String(parts[0]), fraction = parts.count > 1 ? String(parts[1]) : ""
        var digits = Array(integerPart + fraction)
        var point = integerPart.count + exponent          // digits before the decimal point
        while digits.first == "0" { digits.removeFirst(); point -= 1 }
        while digits.last == "0" { digits.removeLast() }
        let sign = x < 0 ? "-" : ""
        if point > 16 || point < -3 {
            let mantissa = digits.count == 1 ? String(digits) : "\(digits[0]).\(String(digits[1...]))"
            let e = point - 1
            return sign + mantissa + "e" + (e < 0 ? "-" : "+") + (abs(e) < 10 ? "0" : "") + String(abs(e))
        }
        if point <= 0 { return sign + "0." + String(repeating: "0", count: -point) + String(digits) }
        if point >= digits.count { return sign + String(digits) + String(repeating: "0", count: point - digits.count) + ".0" }
        return sign + String(digits[..<point]) + "." + String(digits[point...])
    }
}

enum PythonString {
    /// Python's `repr(str)`: single quotes unless the text has ' and no ".
    static func repr(_ s: String) -> String {
        let quote: Character = s.contains("'") && !s.contains("\"") ? "\"" : "'"
        var out = String(quote)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if Character(scalar) == quote { out += "\\" + String(quote) }
                else if scalar.value < 0x20 || (0x7F...0xA0).contains(scalar.value) {
                    out += String(format: "\\x%02x", scalar.value)
                } else { out.unicodeScalars.append(scalar) }
            }
        }
        out.append(quote)
        return out
    }

    /// Python `str.isspace()` for one character (what `strip()` and `split()` use by default).
    static func isSpace(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: return true
        default: return false
        }
    }

    static func strip(_ s: String, _ chars: String?, leading: Bool, trailing: Bool) -> String {
        let remove: (Unicode.Scalar) -> Bool
        if let chars { let set = Set(chars.unicodeScalars); remove = { set.contains($0) } } else { remove = isSpace }
        var scalars = Substring(s).unicodeScalars[...]
        if leading { while let f = scalars.first, remove(f) { scalars.removeFirst() } }
        if trailing { while let l = scalars.last, remove(l) { scalars.removeLast() } }
        return String(String.UnicodeScalarView(scalars))
    }

    /// Python `str.split(sep, maxsplit)`.
    static func split(_ s: String, _ separator: String?, maxSplit: Int) throws -> [String] {
        let scalars = Array(s.unicodeScalars)
        var parts: [String] = []
        if let separator {
            let sep = Array(separator.unicodeScalars)
            guard !sep.isEmpty else { throw JinjaFailure.evaluation("empty separator") }
            var start = 0, i = 0
            while i + sep.count <= scalars.count {
                if (maxSplit < 0 || parts.count < maxSplit) && Array(scalars[i..<i + sep.count]) == sep {
                    parts.append(string(scalars[start..<i]))
                    i += sep.count
                    start = i
                } else { i += 1 }
            }
            parts.append(string(scalars[start...]))
            return parts
        }
        var i = 0
        while true {
            while i < scalars.count && isSpace(scalars[i]) { i += 1 }
            if i == scalars.count { break }
            if maxSplit >= 0 && parts.count == maxSplit {
                var end = scalars.count
                while end > i && isSpace(scalars[end - 1]) { end -= 1 }
                parts.append(string(scalars[i..<end]))
                break
            }
            let start = i
            while i < scalars.count && !isSpace(scalars[i]) { i += 1 }
            parts.append(string(scalars[start..<i]))
        }
        return parts
    }

    static func string<S: Sequence>(_ scalars: S) -> String where S.Element == Unicode.Scalar {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }
}
