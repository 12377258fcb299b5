import Foundation
import OuroIO

/// Globals, operators, attribute lookup, methods, filters and tests, each as jinja2 (on Python objects,
/// in transformers' sandboxed environment) behaves. Anything not implemented is refused by name.
enum JinjaBuiltins {
    // MARK: globals

    static func global(_ name: String) -> JinjaValue? {
        switch name {
        case "raise_exception":
            return .callable(JinjaCallable(name: name) { args, _ in
                throw JinjaFailure.raised(try args.first?.text() ?? "")
            })
        case "namespace":
            return .callable(JinjaCallable(name: name) { args, kwargs in
                var members = JinjaDict()
                for a in args {
                    guard case let .dict(d) = a else { throw JinjaFailure.unsupported("namespace() of a \(a.typeName)") }
                    for m in d.members { members[m.key] = m.value }
                }
                for (k, v) in kwargs { members[k] = v }
                return .namespace(JinjaNamespace(members))
            })
        case "range":
            return .callable(JinjaCallable(name: name) { args, _ in
                let ints = try args.map { a -> Int in
                    guard case let .int(i)? = a.numeric else { throw JinjaFailure.evaluation("range() takes integers") }
                    return i
                }
                let (start, stop, step) = ints.count == 1 ? (0, ints[0], 1) : ints.count == 2 ? (ints[0], ints[1], 1)
                    : ints.count == 3 ? (ints[0], ints[1], ints[2]) : (0, 0, 0)
                guard step != 0 else { throw JinjaFailure.evaluation("range() arg 3 must not be zero") }
                let span = step > 0 ? Double(stop) - Double(start) : Double(start) - Double(stop)
                guard span / Double(step.magnitude) <= 100_000 else { throw JinjaFailure.evaluation("range() too large") }
                return .list(Swift.stride(from: start, to: stop, by: step).map { .int($0) })
            })
        default: return nil
        }
    }

    // MARK: attribute and item lookup

    static let stringMethods: Set<String> = ["capitalize", "casefold", "center", "count", "encode", "endswith", "expandtabs",
        "find", "format", "format_map", "index", "isalnum", "isalpha", "isascii", "isdecimal", "isdigit", "isidentifier",
        "islower", "isnumeric", "isprintable", "isspace", "istitle", "isupper", "join", "ljust", "lower", "lstrip",
        "maketrans", "partition", "removeprefix", "removesuffix", "replace", "rfind", "rindex", "rjust", "rpartition",
        "rsplit", "rstrip", "split", "splitlines", "startswith", "strip", "swapcase", "title", "translate", "upper", "zfill"]
    static let dictMethods: Set<String> = ["clear", "copy", "fromkeys", "get", "items", "keys", "pop", "popitem",
                                           "setdefault", "update", "values"]
    static let listMethods: Set<String> = ["append", "clear", "copy", "count", "extend", "index", "insert", "pop",
                                           "remove", "reverse", "sort"]

    /// `x.name`: jinja2 tries Python's getattr first (methods), then `x['name']`.
    static func attribute(_ value: JinjaValue, _ name: String) throws -> JinjaValue {
        switch value {
        case let .undefined(base): throw JinjaFailure.evaluation("'\(base)' is undefined (looking up .\(name))")
        case let .dict(d):
            if dictMethods.contains(name) { return try method(value, name) }
            return d[name] ?? .undefined(name)
        case .string:
            return stringMethods.contains(name) ? try method(value, name) : .undefined(name)
        case .list, .tuple:
            return listMethods.contains(name) ? try method(value, name) : .undefined(name)
        case let .namespace(ns): return ns.members[name] ?? .undefined(name)
        case let .loop(state):
            if name == "cycle" || name == "changed" { throw JinjaFailure.unsupported("loop.\(name)()") }
            return try state.attribute(name)
        default: return .undefined(name)
        }
    }

    /// `x[key]`: jinja2 tries the item first, then (for a string key) the attribute.
    static func item(_ value: JinjaValue, _ key: JinjaValue) throws -> JinjaValue {
        switch (value, key) {
        case let (.undefined(base), _): throw JinjaFailure.evaluation("'\(base)' is undefined (looking up an item)")
        case let (.dict(d), .string(k)):
            if let v = d[k] { return v }
            return dictMethods.contains(k) ? try method(value, k) : .undefined(k)
        case let (.list(items), _), let (.tuple(items), _):
            guard case let .int(i)? = key.numeric else {
                if case let .string(k) = key { return try attribute(value, k) }
                return .undefined("item")
            }
            let j = i < 0 ? items.count + i : i
            return items.indices.contains(j) ? items[j] : .undefined("item \(i)")
        case let (.string(s), _):
            guard case let .int(i)? = key.numeric else {
                if case let .string(k) = key { return try attribute(value, k) }
                return .undefined("item")
            }
            let scalars = Array(s.unicodeScalars)
            let j = i < 0 ? scalars.count + i : i
            return scalars.indices.contains(j) ? .string(String(scalars[j])) : .undefined("item \(i)")
        case let (.namespace, .string(k)), let (.loop, .string(k)): return try attribute(value, k)
        default: return .undefined("item")
        }
    }

    /// Python slice semantics (`x[a:b:c]`, negative steps included) on lists, tuples and strings.
    static func slice(_ value: JinjaValue, _ start: JinjaValue?, _ stop: JinjaValue?, _ step: JinjaValue?) throws -> JinjaValue {
        func index(_ v: JinjaValue?) throws -> Int? {
            guard let v, !v.isUndefined else { return nil }
            if case .none = v { return nil }
            guard case let .int(i)? = v.numeric else { throw JinjaFailure.evaluation("slice indices must be integers") }
            return i
        }
        let stepValue = try index(step) ?? 1
        guard stepValue != 0 else { throw JinjaFailure.evaluation("slice step cannot be zero") }
        func pick<T>(_ items: [T]) throws -> [T] {
            let n = items.count
            func clamp(_ i: Int?, _ defaultValue: Int) -> Int {
                guard var i else { return defaultValue }
                if i < 0 { i += n }
                return stepValue > 0 ? min(max(i, 0), n) : min(max(i, -1), n - 1)
            }
            let from = clamp(try index(start), stepValue > 0 ? 0 : n - 1)
            let to = clamp(try index(stop), stepValue > 0 ? n : -1)
            var out: [T] = []
            var i = from
            while stepValue > 0 ? i < to : i > to {
                out.append(items[i])
                i += stepValue
            }
            return out
        }
        switch value {
        case let .list(items): return .list(try pick(items))
        case let .tuple(items): return .tuple(try pick(items))
        case let .string(s): return .string(PythonString.string(try pick(Array(s.unicodeScalars))))
        case let .undefined(name): throw JinjaFailure.evaluation("'\(name)' is undefined (slicing)")
        default: throw JinjaFailure.evaluation("'\(value.typeName)' object is not subscriptable")
        }
    }

    // MARK: methods

    static func method(_ target: JinjaValue, _ name: String) throws -> JinjaValue {
        .callable(JinjaCallable(name: name) { args, kwargs in try callMethod(target, name, args, kwargs) })
    }

    private static func argument(_ args: [JinjaValue], _ kwargs: [(String, JinjaValue)], _ position: Int, _ name: String) -> JinjaValue? {
        if position < args.count { return args[position] }
        return kwargs.first { $0.0 == name }?.1
    }

    private static func optionalString(_ v: JinjaValue?, _ what: String) throws -> String? {
        switch v {
        case nil, .none?: return nil
        case let .string(s)?: return s
        case let other?: throw JinjaFailure.evaluation("\(what) arg must be None or str, not \(other.typeName)")
        }
    }

    private static func callMethod(_ target: JinjaValue, _ name: String, _ args: [JinjaValue], _ kwargs: [(String, JinjaValue)]) throws -> JinjaValue {
        switch target {
        case let .string(s):
            switch name {
            case "strip", "lstrip", "rstrip":
                let chars = try optionalString(argument(args, kwargs, 0, "chars"), name)
                return .string(PythonString.strip(s, chars, leading: name != "rstrip", trailing: name != "lstrip"))
            case "startswith", "endswith":
                guard args.count == 1, kwargs.isEmpty else { throw JinjaFailure.unsupported("str.\(name) with start/end arguments") }
                let candidates: [JinjaValue]
                if case let .tuple(items) = args[0] { candidates = items } else { candidates = [args[0]] }
                let scalars = Array(s.unicodeScalars)
                return .bool(try candidates.contains { c in
                    guard case let .string(p) = c else { throw JinjaFailure.evaluation("\(name) first arg must be str or a tuple of str") }
                    let ps = Array(p.unicodeScalars)
                    guard ps.count <= scalars.count else { return false }
                    return name == "startswith" ? Array(scalars.prefix(ps.count)) == ps : Array(scalars.suffix(ps.count)) == ps
                })
            case "split":
                let separator = try optionalString(argument(args, kwargs, 0, "sep"), "split")
                var maxSplit = -1
                if let m = argument(args, kwargs, 1, "maxsplit") {
                    guard case let .int(v)? = m.numeric else { throw JinjaFailure.evaluation("maxsplit must be an integer") }
                    maxSplit = v
                }
                return .list(try PythonString.split(s, separator, maxSplit: maxSplit).map { .string($0) })
            case "upper": return .string(s.uppercased())
            case "lower": return .string(s.lowercased())
            case "capitalize":
                guard let first = s.unicodeScalars.first else { return .string("") }
                return .string(String(first).uppercased() + PythonString.string(s.unicodeScalars.dropFirst()).lowercased())
            case "replace":
                guard args.count >= 2, case let .string(old) = args[0], case let .string(new) = args[1] else {
                    throw JinjaFailure.evaluation("replace() takes two strings")
                }
                guard args.count == 2 else { throw JinjaFailure.unsupported("str.replace with a count") }
                guard !old.isEmpty else { throw JinjaFailure.unsupported("str.replace of an empty string") }
                return .string(s.replacingOccurrences(of: old, with: new, options: .literal))
            case "join":
                guard let items = args.first else { throw JinjaFailure.evaluation("join() takes one argument") }
                return .string(try items.iterated().map { v -> String in
                    guard case let .string(t) = v else { throw JinjaFailure.evaluation("sequence item: expected str instance, \(v.typeName) found") }
                    return t
                }.joined(separator: s))
            case "find":
                guard args.count == 1, case let .string(sub) = args[0] else { throw JinjaFailure.unsupported("str.find with start/end arguments") }
                let hay = Array(s.unicodeScalars), needle = Array(sub.unicodeScalars)
                if needle.isEmpty { return .int(0) }
                guard needle.count <= hay.count else { return .int(-1) }
                for i in 0...(hay.count - needle.count) where Array(hay[i..<i + needle.count]) == needle { return .int(i) }
                return .int(-1)
            default: throw JinjaFailure.unsupported("string method \(name)()")
            }
        case let .dict(d):
            switch name {
            case "items": return .list(d.members.map { .tuple([.string($0.key), $0.value]) })
            case "keys": return .list(d.members.map { .string($0.key) })
            case "values": return .list(d.members.map { $0.value })
            case "get":
                guard let key = args.first else { throw JinjaFailure.evaluation("get expected at least 1 argument") }
                guard case let .string(k) = key else { return args.count > 1 ? args[1] : .none }
                return d[k] ?? (args.count > 1 ? args[1] : .none)
            default: throw JinjaFailure.unsupported("dict method \(name)()")
            }
        default:
            throw JinjaFailure.unsupported("\(target.typeName) method \(name)()")
        }
    }

    // MARK: operators

    static func arithmetic(_ op: String, _ a: JinjaValue, _ b: JinjaValue) throws -> JinjaValue {
        if op == "~" { return .string(try a.text() + b.text()) }
        if let x = a.numeric, let y = b.numeric { return try numeric(op, x, y) }
        switch (op, a, b) {
        case let ("+", .string(x), .string(y)): return .string(x + y)
        case let ("+", .list(x), .list(y)): return .list(x + y)
        case let ("+", .tuple(x), .tuple(y)): return .tuple(x + y)
        case let ("*", .string(x), _):
            guard case let .int(n)? = b.numeric else { break }
            guard n <= 0 || x.utf8.count.multipliedReportingOverflow(by: n).partialValue <= JinjaInterpreter.maxOutput else {
                throw JinjaFailure.evaluation("string repetition too large")
            }
            return .string(String(repeating: x, count: max(n, 0)))
        case ("%", .string, _): throw JinjaFailure.unsupported("'%' string formatting")
        default: break
        }
        if case let .undefined(name) = a { throw JinjaFailure.evaluation("'\(name)' is undefined") }
        if case let .undefined(name) = b { throw JinjaFailure.evaluation("'\(name)' is undefined") }
        throw JinjaFailure.evaluation("unsupported operand type(s) for \(op): '\(a.typeName)' and '\(b.typeName)'")
    }

    private static func numeric(_ op: String, _ x: JinjaValue.Numeric, _ y: JinjaValue.Numeric) throws -> JinjaValue {
        if case let .int(a) = x, case let .int(b) = y {
            func checked(_ r: (partialValue: Int, overflow: Bool)) throws -> JinjaValue {
                if r.overflow { throw JinjaFailure.unsupported("integers beyond 64 bits") }
                return .int(r.partialValue)
            }
            switch op {
            case "+": return try checked(a.addingReportingOverflow(b))
            case "-": return try checked(a.subtractingReportingOverflow(b))
            case "*": return try checked(a.multipliedReportingOverflow(by: b))
            case "/":
                guard b != 0 else { throw JinjaFailure.evaluation("division by zero") }
                return .double(Double(a) / Double(b))
            case "//", "%":
                guard b != 0 else { throw JinjaFailure.evaluation("integer division or modulo by zero") }
                var q = a / b, r = a % b
                if r != 0 && (r < 0) != (b < 0) { q -= 1; r += b }   // Python floors toward -infinity
                return .int(op == "//" ? q : r)
            case "**":
                guard b >= 0 else { return .double(pow(Double(a), Double(b))) }
                var result = 1, base = a, e = b
                while e > 0 {
                    if e & 1 == 1 { result = try checked(result.multipliedReportingOverflow(by: base)).intValue }
                    e >>= 1
                    if e > 0 { base = try checked(base.multipliedReportingOverflow(by: base)).intValue }
                }
                return .int(result)
            default: break
            }
        }
        let a = x.double, b = y.double
        switch op {
        case "+": return .double(a + b)
        case "-": return .double(a - b)
        case "*": return .double(a * b)
        case "/":
            guard b != 0 else { throw JinjaFailure.evaluation("float division by zero") }
            return .double(a / b)
        case "//", "%":
            guard b != 0 else { throw JinjaFailure.evaluation("float modulo") }
            let r = fmod(a, b)
            let mod = r != 0 && (r < 0) != (b < 0) ? r + b : r
            return .double(op == "%" ? mod : ((a - mod) / b).rounded())
        case "**": return .double(pow(a, b))
        default: throw JinjaFailure.unsupported("operator \(op)")
        }
    }

    static func compare(_ op: String, _ a: JinjaValue, _ b: JinjaValue) throws -> Bool {
        switch op {
        case "==": return a.equals(b)
        case "!=": return !a.equals(b)
        case "<": return try a.less(than: b)
        case ">": return try b.less(than: a)
        case "<=": return try a.less(than: b) || a.equals(b)
        case ">=": return try b.less(than: a) || a.equals(b)
        case "in": return try contains(b, a)
        case "notin": return try !contains(b, a)
        default: throw JinjaFailure.unsupported("comparison \(op)")
        }
    }

    static func contains(_ container: JinjaValue, _ item: JinjaValue) throws -> Bool {
        switch container {
        case let .string(s):
            guard case let .string(sub) = item else {
                throw JinjaFailure.evaluation("'in <string>' requires string as left operand, not \(item.typeName)")
            }
            return sub.isEmpty || s.range(of: sub, options: .literal) != nil
        case let .list(items), let .tuple(items): return items.contains { $0.equals(item) }
        case let .dict(d):
            guard case let .string(k) = item else { return false }
            return d[k] != nil
        case .undefined: return false
        default: throw JinjaFailure.evaluation("argument of type '\(container.typeName)' is not iterable")
        }
    }

    // MARK: filters

    static func filter(_ name: String, _ value: JinjaValue, _ args: [JinjaValue], _ kwargs: [(String, JinjaValue)]) throws -> JinjaValue {
        switch name {
        case "trim":
            let chars = try optionalString(argument(args, kwargs, 0, "chars"), "trim")
            return .string(PythonString.strip(try value.text(), chars, leading: true, trailing: true))
        case "length", "count":
            switch value {
            case let .string(s): return .int(s.unicodeScalars.count)
            case let .list(items), let .tuple(items): return .int(items.count)
            case let .dict(d): return .int(d.count)
            case .undefined: return .int(0)
            default: throw JinjaFailure.evaluation("object of type '\(value.typeName)' has no len()")
            }
        case "tojson":
            // transformers' tojson: json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False).
            if let ascii = argument(args, kwargs, 0, "ensure_ascii"), ascii.truthy { throw JinjaFailure.unsupported("tojson(ensure_ascii=True)") }
            if let separators = argument(args, kwargs, 2, "separators"), !(separators.equals(.none)) {
                throw JinjaFailure.unsupported("tojson(separators=...)")
            }
            var indent: Int?
            if let i = argument(args, kwargs, 1, "indent"), !i.equals(.none) {
                guard case let .int(n)? = i.numeric else { throw JinjaFailure.unsupported("tojson(indent=\(try i.repr()))") }
                indent = n
            }
            let sortKeys = argument(args, kwargs, 3, "sort_keys")?.truthy ?? false
            return .string(try PythonJSON.dumps(value, indent: indent, sortKeys: sortKeys))
        case "string", "safe": return .string(try value.text())
        case "lower": return .string(try value.text().lowercased())
        case "upper": return .string(try value.text().uppercased())
        case "capitalize":
            let s = try value.text()
            guard let first = s.unicodeScalars.first else { return .string("") }
            return .string(String(first).uppercased() + PythonString.string(s.unicodeScalars.dropFirst()).lowercased())
        case "first", "last":
            let items = try value.iterated()
            guard let v = name == "first" ? items.first : items.last else { return .undefined("\(name) of an empty sequence") }
            return v
        case "join":
            guard kwargs.allSatisfy({ $0.0 == "d" }), args.count <= 1 else { throw JinjaFailure.unsupported("join with an attribute") }
            let separator = try (argument(args, kwargs, 0, "d") ?? .string("")).text()
            return .string(try value.iterated().map { try $0.text() }.joined(separator: separator))
        case "default", "d":
            let fallback = argument(args, kwargs, 0, "default_value") ?? .string("")
            let boolean = argument(args, kwargs, 1, "boolean")?.truthy ?? false
            return value.isUndefined || (boolean && !value.truthy) ? fallback : value
        case "list": return .list(try value.iterated())
        case "reverse":
            if case let .string(s) = value { return .string(PythonString.string(s.unicodeScalars.reversed())) }
            return .list(try value.iterated().reversed())
        case "replace":
            guard args.count == 2 else { throw JinjaFailure.unsupported("replace filter with a count") }
            let old = try args[0].text(), new = try args[1].text()
            guard !old.isEmpty else { throw JinjaFailure.unsupported("replace of an empty string") }
            return .string(try value.text().replacingOccurrences(of: old, with: new, options: .literal))
        case "int":
            switch value.numeric {
            case let .int(i)?: return .int(i)
            case let .double(d)?: return d.isFinite && abs(d) < 9e18 ? .int(Int(d)) : .int(0)
            case nil:
                if case let .string(s) = value, let i = Int(s.trimmingCharacters(in: .whitespaces)) { return .int(i) }
                throw JinjaFailure.unsupported("int filter on \(try value.repr())")
            }
        case "float":
            if let n = value.numeric { return .double(n.double) }
            if case let .string(s) = value, let d = Double(s.trimmingCharacters(in: .whitespaces)) { return .double(d) }
            throw JinjaFailure.unsupported("float filter on \(try value.repr())")
        case "abs":
            switch value.numeric {
            case let .int(i)?: return .int(i.magnitude > UInt(Int.max) ? i : abs(i))
            case let .double(d)?: return .double(abs(d))
            case nil: throw JinjaFailure.evaluation("bad operand type for abs(): '\(value.typeName)'")
            }
        case "items":
            guard case let .dict(d) = value else {
                if value.isUndefined { return .list([]) }
                throw JinjaFailure.evaluation("items filter takes a mapping")
            }
            return .list(d.members.map { .tuple([.string($0.key), $0.value]) })
        default:
            throw JinjaFailure.unsupported("filter '\(name)'")
        }
    }

    // MARK: tests

    static func test(_ name: String, _ v: JinjaValue, _ args: [JinjaValue]) throws -> Bool {
        func arg() throws -> JinjaValue {
            guard let a = args.first else { throw JinjaFailure.evaluation("test '\(name)' needs an argument") }
            return a
        }
        switch name {
        case "defined": return !v.isUndefined
        case "undefined": return v.isUndefined
        case "none": if case .none = v { return true } else { return false }
        case "string": if case .string = v { return true } else { return false }
        case "number": return v.numeric != nil
        case "integer": if case .int = v { return true } else { return false }
        case "float": if case .double = v { return true } else { return false }
        case "boolean": if case .bool = v { return true } else { return false }
        case "true": if case .bool(true) = v { return true } else { return false }
        case "false": if case .bool(false) = v { return true } else { return false }
        case "mapping": if case .dict = v { return true } else { return false }
        case "sequence":
            switch v {
            case .string, .list, .tuple, .dict, .undefined: return true
            default: return false
            }
        case "iterable":
            switch v {
            case .string, .list, .tuple, .dict, .undefined: return true
            default: return false
            }
        case "odd", "even", "divisibleby":
            guard case let .int(i)? = v.numeric else { throw JinjaFailure.evaluation("test '\(name)' needs an integer") }
            if name == "divisibleby" {
                guard case let .int(d)? = try arg().numeric, d != 0 else { throw JinjaFailure.evaluation("divisibleby needs a nonzero integer") }
                return i % d == 0
            }
            return (i % 2 != 0) == (name == "odd")
        case "eq", "equalto", "==": return v.equals(try arg())
        case "ne", "!=": return !v.equals(try arg())
        case "lt", "<": return try v.less(than: try arg())
        case "gt", ">": return try arg().less(than: v)
        case "le", "<=": let a = try arg(); return try v.less(than: a) || v.equals(a)
        case "ge", ">=": let a = try arg(); return try a.less(than: v) || v.equals(a)
        case "in": return try contains(try arg(), v)
        case "lower": let s = try v.text(); return s == s.lowercased()
        case "upper": let s = try v.text(); return s == s.uppercased()
        default: throw JinjaFailure.unsupported("test '\(name)'")
        }
    }
}

private extension JinjaValue {
    var intValue: Int { if case let .int(i) = self { return i } else { return 0 } }
}

/// Python's `json.dumps(x, ensure_ascii=False)` (what transformers' `tojson` filter returns).
enum PythonJSON {
    static func dumps(_ value: JinjaValue, indent: Int?, sortKeys: Bool) throws -> String {
        var out = ""
        try write(value, indent: indent, level: 0, sortKeys: sortKeys, into: &out)
        return out
    }

    private static func write(_ v: JinjaValue, indent: Int?, level: Int, sortKeys: Bool, into out: inout String) throws {
        guard level < 100 else { throw JinjaFailure.evaluation("tojson: nesting too deep") }
        func newline(_ l: Int) { if let indent { out += "\n" + String(repeating: " ", count: max(indent, 0) * l) } }
        let itemSeparator = indent == nil ? ", " : ","
        switch v {
        case .none: out += "null"
        case let .bool(b): out += b ? "true" : "false"
        case let .int(i): out += String(i)
        case let .double(d):
            out += d.isNaN ? "NaN" : d.isInfinite ? (d < 0 ? "-Infinity" : "Infinity") : PythonFloat.repr(d)
        case let .string(s): out += jsonQuoted(s)
        case let .list(items), let .tuple(items):
            if items.isEmpty { out += "[]"; return }
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += itemSeparator }
                newline(level + 1)
                try write(item, indent: indent, level: level + 1, sortKeys: sortKeys, into: &out)
            }
            newline(level)
            out += "]"
        case let .dict(d):
            if d.isEmpty { out += "{}"; return }
            let members = sortKeys ? d.members.sorted { $0.key.unicodeScalars.lexicographicallyPrecedes($1.key.unicodeScalars) } : d.members
            out += "{"
            for (i, m) in members.enumerated() {
                if i > 0 { out += itemSeparator }
                newline(level + 1)
                out += jsonQuoted(m.key) + ": "
                try write(m.value, indent: indent, level: level + 1, sortKeys: sortKeys, into: &out)
            }
            newline(level)
            out += "}"
        default:
            throw JinjaFailure.evaluation("Object of type \(v.typeName) is not JSON serializable")
        }
    }
}
