/// The syntax tree of a template: statements (`Node`) and expressions (`Expr`), built with jinja2's
/// operator precedence (jinja2/parser.py): conditional < or < and < not < comparisons (and `in`)
/// < `+ -` < `~` < `* / // %` < `**` < unary minus < postfix (`.x`, `[i]`, `(...)`) < filters and tests.
/// So `'a' + x | trim` trims only `x`, and `not x is defined` is `not (x is defined)`.
indirect enum JinjaExpr {
    case literal(JinjaValue)
    case name(String)
    case list([JinjaExpr])
    case tuple([JinjaExpr])
    case dict([(JinjaExpr, JinjaExpr)])
    case attribute(JinjaExpr, String)
    case item(JinjaExpr, JinjaExpr)
    case slice(JinjaExpr, JinjaExpr?, JinjaExpr?, JinjaExpr?)
    case call(JinjaExpr, [JinjaExpr], [(String, JinjaExpr)])
    case filter(JinjaExpr, String, [JinjaExpr], [(String, JinjaExpr)])
    case test(JinjaExpr, String, [JinjaExpr], negated: Bool)
    case unary(String, JinjaExpr)
    case binary(String, JinjaExpr, JinjaExpr)
    case compare(JinjaExpr, [(String, JinjaExpr)])
    case conditional(JinjaExpr, then: JinjaExpr, otherwise: JinjaExpr?)
}

indirect enum JinjaNode {
    case text(String)
    case output(JinjaExpr, line: Int)
    case conditional([(JinjaExpr, [JinjaNode])], otherwise: [JinjaNode], line: Int)
    case loop(targets: [String], iterable: JinjaExpr, filter: JinjaExpr?, body: [JinjaNode], otherwise: [JinjaNode], line: Int)
    case assign(targets: [String], value: JinjaExpr, line: Int)
    case assignAttribute(namespace: String, attribute: String, value: JinjaExpr, line: Int)
    case assignBlock(name: String, body: [JinjaNode], line: Int)
    case breakLoop(line: Int)
    case continueLoop(line: Int)
}

struct JinjaParser {
    /// Filters and tests the interpreter implements; any other name is refused when parsing, as jinja2
    /// refuses unknown ones when compiling.
    static let filters: Set<String> = ["trim", "length", "count", "tojson", "string", "lower", "upper", "capitalize",
                                       "first", "last", "join", "default", "d", "list", "reverse", "replace",
                                       "int", "float", "abs", "items", "safe"]
    static let tests: Set<String> = ["defined", "undefined", "none", "string", "number", "integer", "float",
                                     "boolean", "true", "false", "mapping", "sequence", "iterable", "odd", "even",
                                     "divisibleby", "eq", "equalto", "==", "ne", "!=", "lt", "<", "gt", ">",
                                     "le", "<=", "ge", ">=", "in", "lower", "upper"]
    /// Statements jinja2 knows that a chat template could use but this renderer does not.
    static let unsupportedStatements: Set<String> = ["macro", "call", "filter", "include", "import", "from", "extends",
                                                     "block", "with", "autoescape", "do", "raw", "trans"]
    /// Nesting limit for blocks and expressions (operator chains count one level per operator), so a
    /// hostile template cannot exhaust the stack when parsed, rendered or freed.
    static let maxDepth = 400

    private let tokens: [JinjaToken]
    private var i = 0
    private var depth = 0

    static func parse(_ source: String) throws -> [JinjaNode] {
        var parser = JinjaParser(tokens: try JinjaLexer.tokenize(source))
        let (body, end) = try parser.statements(until: [])
        guard end == nil else { throw parser.fail("unexpected '\(end!)'") }
        return body
    }

    private init(tokens: [JinjaToken]) { self.tokens = tokens }

    // MARK: tokens

    private var current: JinjaToken? { i < tokens.count ? tokens[i] : nil }
    private var line: Int { current?.line ?? tokens.last?.line ?? 1 }

    private func fail(_ message: String) -> JinjaFailure { .syntax("line \(line): \(message)") }

    /// One level deeper; callers undo it with `depth -= levels` when their node is built.
    private mutating func deeper() throws {
        depth += 1
        guard depth < Self.maxDepth else { throw fail("expression or blocks nested too deeply") }
    }

    private func isOp(_ op: String) -> Bool { current?.kind == .op && current?.value == op }
    private func isName(_ name: String) -> Bool { current?.kind == .name && current?.value == name }

    private mutating func skipOp(_ op: String) -> Bool {
        if isOp(op) { i += 1; return true }
        return false
    }

    private mutating func skipName(_ name: String) -> Bool {
        if isName(name) { i += 1; return true }
        return false
    }

    private mutating func expectOp(_ op: String) throws {
        guard skipOp(op) else { throw fail("expected '\(op)', got \(describe(current))") }
    }

    private mutating func expect(_ kind: JinjaToken.Kind, _ what: String) throws -> JinjaToken {
        guard let t = current, t.kind == kind else { throw fail("expected \(what), got \(describe(current))") }
        i += 1
        return t
    }

    private func describe(_ token: JinjaToken?) -> String {
        guard let token else { return "end of template" }
        switch token.kind {
        case .blockEnd: return "end of statement block"
        case .variableEnd: return "end of print statement"
        case .text: return "template text"
        default: return "'\(token.value)'"
        }
    }

    // MARK: statements

    /// Parses nodes until a `{% name %}` whose name is in `ends` (left unconsumed after the `{%`);
    /// returns that name, or nil at the end of the template.
    private mutating func statements(until ends: Set<String>) throws -> ([JinjaNode], String?) {
        var body: [JinjaNode] = []
        while let t = current {
            switch t.kind {
            case .text:
                body.append(.text(t.value))
                i += 1
            case .variableBegin:
                i += 1
                let e = try tupleExpression()
                _ = try expect(.variableEnd, "end of print statement")
                body.append(.output(e, line: t.line))
            case .blockBegin:
                guard i + 1 < tokens.count, tokens[i + 1].kind == .name else {
                    i += 1
                    throw fail("expected a statement name after '{%'")
                }
                let name = tokens[i + 1].value
                if ends.contains(name) {
                    i += 2
                    return (body, name)
                }
                i += 2
                body.append(try statement(name, line: t.line))
            default:
                throw fail("unexpected \(describe(t))")
            }
        }
        return (body, nil)
    }

    private mutating func endOfStatement() throws {
        _ = try expect(.blockEnd, "end of statement block")
    }

    private mutating func statement(_ name: String, line: Int) throws -> JinjaNode {
        depth += 1
        defer { depth -= 1 }
        guard depth < Self.maxDepth else { throw fail("blocks nested too deeply") }
        switch name {
        case "if":
            var branches: [(JinjaExpr, [JinjaNode])] = []
            var condition = try expression()
            try endOfStatement()
            while true {
                let (body, end) = try statements(until: ["elif", "else", "endif"])
                branches.append((condition, body))
                switch end {
                case "elif":
                    condition = try expression()
                    try endOfStatement()
                case "else":
                    try endOfStatement()
                    let (otherwise, close) = try statements(until: ["endif"])
                    guard close != nil else { throw fail("missing {% endif %}") }
                    try endOfStatement()
                    return .conditional(branches, otherwise: otherwise, line: line)
                case "endif":
                    try endOfStatement()
                    return .conditional(branches, otherwise: [], line: line)
                default: throw fail("missing {% endif %}")
                }
            }
        case "for":
            let targets = try assignmentTargets()
            guard skipName("in") else { throw fail("expected 'in' in a for loop, got \(describe(current))") }
            let iterable = try tupleExpression(allowConditional: false)
            var filter: JinjaExpr?
            if skipName("if") { filter = try expression() }
            if isName("recursive") { throw JinjaFailure.unsupported("recursive for loops") }
            try endOfStatement()
            let (body, end) = try statements(until: ["else", "endfor"])
            var otherwise: [JinjaNode] = []
            if end == "else" {
                try endOfStatement()
                let (e, close) = try statements(until: ["endfor"])
                guard close != nil else { throw fail("missing {% endfor %}") }
                otherwise = e
            } else if end == nil { throw fail("missing {% endfor %}") }
            try endOfStatement()
            return .loop(targets: targets, iterable: iterable, filter: filter, body: body, otherwise: otherwise, line: line)
        case "set":
            let first = try expect(.name, "a variable name")
            if skipOp(".") {
                let attribute = try expect(.name, "an attribute name")
                try expectOp("=")
                let value = try tupleExpression()
                try endOfStatement()
                return .assignAttribute(namespace: first.value, attribute: attribute.value, value: value, line: line)
            }
            var targets = [first.value]
            while skipOp(",") { targets.append(try expect(.name, "a variable name").value) }
            if skipOp("=") {
                let value = try tupleExpression()
                try endOfStatement()
                return .assign(targets: targets, value: value, line: line)
            }
            guard targets.count == 1 else { throw fail("expected '='") }
            if isOp("|") { throw JinjaFailure.unsupported("filtered {% set %} blocks") }
            try endOfStatement()
            let (body, end) = try statements(until: ["endset"])
            guard end != nil else { throw fail("missing {% endset %}") }
            try endOfStatement()
            return .assignBlock(name: first.value, body: body, line: line)
        case "break":
            try endOfStatement()
            return .breakLoop(line: line)
        case "continue":
            try endOfStatement()
            return .continueLoop(line: line)
        case "generation":
            // transformers' AssistantTracker marks assistant text for masks; the text renders as is.
            try endOfStatement()
            let (body, end) = try statements(until: ["endgeneration"])
            guard end != nil else { throw fail("missing {% endgeneration %}") }
            try endOfStatement()
            return .conditional([(.literal(.bool(true)), body)], otherwise: [], line: line)
        default:
            if Self.unsupportedStatements.contains(name) { throw JinjaFailure.unsupported("{% \(name) %} statement") }
            throw fail("unknown statement '\(name)'")
        }
    }

    private mutating func assignmentTargets() throws -> [String] {
        let parenthesized = skipOp("(")
        var names = [try expect(.name, "a loop variable").value]
        while skipOp(",") {
            if parenthesized && isOp(")") { break }
            names.append(try expect(.name, "a loop variable").value)
        }
        if parenthesized { try expectOp(")") }
        return names
    }

    // MARK: expressions

    /// `a, b` at the top of a print or set statement is a tuple, as in Python.
    private mutating func tupleExpression(allowConditional: Bool = true) throws -> JinjaExpr {
        let first = allowConditional ? try expression() : try or()
        guard isOp(",") else { return first }
        var items = [first]
        while skipOp(",") {
            if current?.kind == .blockEnd || current?.kind == .variableEnd || isName("if") { break }
            items.append(allowConditional ? try expression() : try or())
        }
        return .tuple(items)
    }

    private mutating func expression() throws -> JinjaExpr {
        depth += 1
        defer { depth -= 1 }
        guard depth < Self.maxDepth else { throw fail("expression nested too deeply") }
        var e = try or()
        var levels = 0
        defer { depth -= levels }
        while skipName("if") {
            try deeper(); levels += 1
            let condition = try or()
            let otherwise = skipName("else") ? try expression() : nil
            e = .conditional(condition, then: e, otherwise: otherwise)
        }
        return e
    }

    private mutating func or() throws -> JinjaExpr {
        var e = try and()
        var levels = 0
        defer { depth -= levels }
        while skipName("or") { try deeper(); levels += 1; e = .binary("or", e, try and()) }
        return e
    }

    private mutating func and() throws -> JinjaExpr {
        var e = try not()
        var levels = 0
        defer { depth -= levels }
        while skipName("and") { try deeper(); levels += 1; e = .binary("and", e, try not()) }
        return e
    }

    private mutating func not() throws -> JinjaExpr {
        if skipName("not") {
            try deeper()
            defer { depth -= 1 }
            return .unary("not", try not())
        }
        return try compare()
    }

    private mutating func compare() throws -> JinjaExpr {
        let first = try math1()
        var ops: [(String, JinjaExpr)] = []
        var levels = 0
        defer { depth -= levels }
        while true {
            try deeper(); levels += 1
            if let t = current, t.kind == .op, ["==", "!=", "<", "<=", ">", ">="].contains(t.value) {
                i += 1
                ops.append((t.value, try math1()))
            } else if skipName("in") {
                ops.append(("in", try math1()))
            } else if isName("not"), i + 1 < tokens.count, tokens[i + 1].kind == .name, tokens[i + 1].value == "in" {
                i += 2
                ops.append(("notin", try math1()))
            } else { break }
        }
        return ops.isEmpty ? first : .compare(first, ops)
    }

    private mutating func math1() throws -> JinjaExpr {
        var e = try concat()
        var levels = 0
        defer { depth -= levels }
        while let t = current, t.kind == .op, t.value == "+" || t.value == "-" {
            try deeper(); levels += 1
            i += 1
            e = .binary(t.value, e, try concat())
        }
        return e
    }

    private mutating func concat() throws -> JinjaExpr {
        var e = try math2()
        var levels = 0
        defer { depth -= levels }
        while skipOp("~") { try deeper(); levels += 1; e = .binary("~", e, try math2()) }
        return e
    }

    private mutating func math2() throws -> JinjaExpr {
        var e = try power()
        var levels = 0
        defer { depth -= levels }
        while let t = current, t.kind == .op, ["*", "/", "//", "%"].contains(t.value) {
            try deeper(); levels += 1
            i += 1
            e = .binary(t.value, e, try power())
        }
        return e
    }

    private mutating func power() throws -> JinjaExpr {
        var e = try unary()
        var levels = 0
        defer { depth -= levels }
        while skipOp("**") { try deeper(); levels += 1; e = .binary("**", e, try unary()) }
        return e
    }

    private mutating func unary(withFilter: Bool = true) throws -> JinjaExpr {
        var e: JinjaExpr
        try deeper()
        defer { depth -= 1 }
        if skipOp("-") {
            e = .unary("-", try unary(withFilter: false))
        } else if skipOp("+") {
            e = .unary("+", try unary(withFilter: false))
        } else {
            e = try primary()
        }
        e = try postfix(e)
        if withFilter { e = try filters(e) }
        return e
    }

    private mutating func primary() throws -> JinjaExpr {
        guard let t = current else { throw fail("unexpected end of template") }
        switch t.kind {
        case .name:
            i += 1
            switch t.value {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.none)
            default: return .name(t.value)
            }
        case .string:
            var text = t.value
            i += 1
            while let next = current, next.kind == .string { text += next.value; i += 1 }   // adjacent literals join
            return .literal(.string(text))
        case .integer:
            i += 1
            guard let v = Int(t.value) else { throw JinjaFailure.unsupported("integer literal \(t.value) beyond 64 bits") }
            return .literal(.int(v))
        case .float:
            i += 1
            return .literal(.double(Double(t.value) ?? .nan))
        case .op where t.value == "(":
            i += 1
            if skipOp(")") { return .tuple([]) }
            let first = try expression()
            if skipOp(")") { return first }
            var items = [first]
            while skipOp(",") {
                if isOp(")") { break }
                items.append(try expression())
            }
            try expectOp(")")
            return .tuple(items)
        case .op where t.value == "[":
            i += 1
            var items: [JinjaExpr] = []
            while !isOp("]") {
                items.append(try expression())
                if !skipOp(",") { break }
            }
            try expectOp("]")
            return .list(items)
        case .op where t.value == "{":
            i += 1
            var pairs: [(JinjaExpr, JinjaExpr)] = []
            while !isOp("}") {
                let key = try expression()
                try expectOp(":")
                pairs.append((key, try expression()))
                if !skipOp(",") { break }
            }
            try expectOp("}")
            return .dict(pairs)
        default:
            throw fail("unexpected \(describe(t))")
        }
    }

    private mutating func postfix(_ base: JinjaExpr) throws -> JinjaExpr {
        var e = base
        var levels = 0
        defer { depth -= levels }
        while true {
            try deeper(); levels += 1
            if skipOp(".") {
                guard let t = current, t.kind == .name || t.kind == .integer else { throw fail("expected an attribute name after '.'") }
                i += 1
                e = t.kind == .name ? .attribute(e, t.value) : .item(e, .literal(.int(Int(t.value) ?? 0)))
            } else if skipOp("[") {
                e = try subscriptExpression(e)
            } else if isOp("(") {
                e = try call(e)
            } else {
                return e
            }
        }
    }

    private mutating func subscriptExpression(_ base: JinjaExpr) throws -> JinjaExpr {
        var parts: [JinjaExpr?] = [nil]
        var isSlice = false
        while !isOp("]") {
            if skipOp(":") {
                isSlice = true
                parts.append(nil)
                continue
            }
            guard parts[parts.count - 1] == nil else { throw fail("expected ']' in a subscript") }
            parts[parts.count - 1] = try expression()
            if isOp(",") { throw JinjaFailure.unsupported("tuple subscripts") }
        }
        try expectOp("]")
        if !isSlice {
            guard let index = parts[0] else { throw fail("empty subscript") }
            return .item(base, index)
        }
        guard parts.count <= 3 else { throw fail("too many ':' in a slice") }
        return .slice(base, parts[0], parts.count > 1 ? parts[1] : nil, parts.count > 2 ? parts[2] : nil)
    }

    private mutating func arguments() throws -> ([JinjaExpr], [(String, JinjaExpr)]) {
        try expectOp("(")
        var positional: [JinjaExpr] = [], keywords: [(String, JinjaExpr)] = []
        while !isOp(")") {
            if isOp("*") || isOp("**") { throw JinjaFailure.unsupported("*args / **kwargs in calls") }
            if let t = current, t.kind == .name, i + 1 < tokens.count, tokens[i + 1].kind == .op, tokens[i + 1].value == "=" {
                i += 2
                keywords.append((t.value, try expression()))
            } else {
                guard keywords.isEmpty else { throw fail("positional argument after a keyword argument") }
                positional.append(try expression())
            }
            if !skipOp(",") { break }
        }
        try expectOp(")")
        return (positional, keywords)
    }

    private mutating func call(_ callee: JinjaExpr) throws -> JinjaExpr {
        let (positional, keywords) = try arguments()
        return .call(callee, positional, keywords)
    }

    private mutating func dottedName(_ what: String) throws -> String {
        var name = try expect(.name, what).value
        while skipOp(".") { name += "." + (try expect(.name, what).value) }
        return name
    }

    private mutating func filters(_ base: JinjaExpr) throws -> JinjaExpr {
        var e = base
        var levels = 0
        defer { depth -= levels }
        while true {
            try deeper(); levels += 1
            if skipOp("|") {
                let name = try dottedName("a filter name")
                guard Self.filters.contains(name) else { throw JinjaFailure.unsupported("filter '\(name)'") }
                let (positional, keywords) = isOp("(") ? try arguments() : ([], [])
                e = .filter(e, name, positional, keywords)
            } else if skipName("is") {
                let negated = skipName("not")
                let name: String
                if let t = current, t.kind == .op, ["==", "!=", "<", "<=", ">", ">="].contains(t.value) {
                    i += 1
                    name = t.value
                } else {
                    name = try dottedName("a test name")
                }
                guard Self.tests.contains(name) else { throw JinjaFailure.unsupported("test '\(name)'") }
                var positional: [JinjaExpr] = []
                if isOp("(") {
                    let (p, k) = try arguments()
                    guard k.isEmpty else { throw JinjaFailure.unsupported("keyword arguments to tests") }
                    positional = p
                } else if let t = current, [.name, .string, .integer, .float].contains(t.kind) || (t.kind == .op && ["(", "[", "{"].contains(t.value)),
                          !(t.kind == .name && ["else", "or", "and"].contains(t.value)) {
                    // `x is divisibleby 3`: one argument without parentheses.
                    positional = [try postfix(try primary())]
                }
                e = .test(e, name, positional, negated: negated)
            } else if isOp("(") {
                e = try call(e)
            } else {
                return e
            }
        }
    }
}
