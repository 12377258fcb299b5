/// Splits a template into text and tag tokens the way jinja2's lexer does under transformers' settings
/// (trim_blocks, lstrip_blocks, keep_trailing_newline off):
/// - `{%-` / `{{-` / `{#-` remove all whitespace before the tag; `-%}` / `-}}` / `-#}` all after it;
/// - trim_blocks: the first newline after `%}` or `#}` is dropped (not after `}}`; `+%}` keeps it);
/// - lstrip_blocks: spaces and tabs between a line start and `{%` / `{#` are dropped (`{%+` keeps them);
/// - newlines are normalized to `\n` and one trailing newline of the template is dropped.
struct JinjaToken: Equatable {
    enum Kind: Equatable {
        case text
        case variableBegin, variableEnd, blockBegin, blockEnd
        case name, string, integer, float, op
    }
    let kind: Kind
    let value: String
    let line: Int
}

struct JinjaLexer {
    static let operators = ["//", "**", "==", "!=", ">=", "<=",
                            "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";"]

    private let s: [Unicode.Scalar]
    private var pos = 0
    private var line = 1
    private(set) var tokens: [JinjaToken] = []

    static func tokenize(_ source: String) throws -> [JinjaToken] {
        var lexer = JinjaLexer(source)
        try lexer.run()
        return lexer.tokens
    }

    private init(_ source: String) {
        var normalized = source.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
        if normalized.hasSuffix("\n") { normalized.removeLast() }
        s = Array(normalized.unicodeScalars)
    }

    private func at(_ i: Int, _ text: String) -> Bool {
        var j = i
        for c in text.unicodeScalars {
            guard j < s.count, s[j] == c else { return false }
            j += 1
        }
        return true
    }

    private func fail(_ message: String) -> JinjaFailure { .syntax("line \(line): \(message)") }

    private mutating func emit(_ kind: JinjaToken.Kind, _ value: String) {
        tokens.append(JinjaToken(kind: kind, value: value, line: line))
        line += value.unicodeScalars.filter { $0 == "\n" }.count
    }

    private mutating func run() throws {
        // jinja2 treats the template start as a line start for lstrip_blocks; afterwards a line starts
        // when the previous token ended with a newline (e.g. one trim_blocks kept from a `%}\n`).
        var lineStarting = true
        while pos < s.count {
            guard let tagStart = nextTag(from: pos) else {
                emit(.text, PythonString.string(s[pos...]))
                break
            }
            var text = Array(s[pos..<tagStart])
            let opener = String(s[tagStart]) + String(s[tagStart + 1])
            var after = tagStart + 2
            let sign: Unicode.Scalar? = after < s.count && (s[after] == "-" || s[after] == "+") ? s[after] : nil
            if sign != nil { after += 1 }
            if sign == "-" {
                while let last = text.last, PythonString.isSpace(last) { text.removeLast() }
            } else if sign != "+" && opener != "{{" {
                let lineStart = (text.lastIndex(of: "\n").map { $0 + 1 }) ?? 0
                if (lineStart > 0 || lineStarting) && lineStart < text.count
                    && text[lineStart...].allSatisfy(PythonString.isSpace) {
                    text.removeSubrange(lineStart...)
                }
            }
            if !text.isEmpty { emit(.text, PythonString.string(text)) }
            if opener == "{%" && isRawBlock(after) { throw JinjaFailure.unsupported("{% raw %}") }
            pos = after
            switch opener {
            case "{#": lineStarting = try skipComment()
            case "{%":
                emit(.blockBegin, "{%")
                lineStarting = try tagContents(block: true)
            default:
                emit(.variableBegin, "{{")
                lineStarting = try tagContents(block: false)
            }
        }
    }

    private func nextTag(from start: Int) -> Int? {
        var i = start
        while i + 1 < s.count {
            if s[i] == "{" && (s[i + 1] == "{" || s[i + 1] == "%" || s[i + 1] == "#") { return i }
            i += 1
        }
        return nil
    }

    private func isRawBlock(_ from: Int) -> Bool {
        var i = from
        while i < s.count && PythonString.isSpace(s[i]) { i += 1 }
        return at(i, "raw") && (i + 3 == s.count || !(s[i + 3].properties.isAlphabetic || s[i + 3] == "_"))
    }

    /// Skips to the end of a comment; returns whether the consumed text ends with a newline.
    private mutating func skipComment() throws -> Bool {
        var i = pos
        while i < s.count {
            if at(i, "+#}") { return finish(commentEnd: i + 3) }
            if at(i, "-#}") {
                var j = i + 3
                while j < s.count && PythonString.isSpace(s[j]) { j += 1 }
                return finish(commentEnd: j)
            }
            if at(i, "#}") { return finish(commentEnd: i + 2 < s.count && s[i + 2] == "\n" ? i + 3 : i + 2) }
            i += 1
        }
        throw fail("missing end of comment tag")
    }

    private mutating func finish(commentEnd: Int) -> Bool {
        line += s[pos..<commentEnd].filter { $0 == "\n" }.count
        pos = commentEnd
        return s[commentEnd - 1] == "\n"
    }

    /// Lexes expression tokens up to the closing delimiter; returns whether the closing match ends
    /// with a newline.
    private mutating func tagContents(block: Bool) throws -> Bool {
        var balance: [Unicode.Scalar] = []
        while true {
            guard pos < s.count else { throw fail("unexpected end of template inside a tag") }
            if balance.isEmpty, let end = closing(block: block) {
                let consumed = s[pos..<end]
                emit(block ? .blockEnd : .variableEnd, PythonString.string(consumed))
                pos = end
                return consumed.last == "\n"
            }
            let c = s[pos]
            if PythonString.isSpace(c) {
                if c == "\n" { line += 1 }
                pos += 1
                continue
            }
            if c.properties.numericType != nil && ("0"..."9").contains(c) {
                number()
            } else if c == "_" || (c.properties.isAlphabetic) {
                var j = pos
                while j < s.count && (s[j] == "_" || s[j].properties.isAlphabetic || ("0"..."9").contains(s[j])) { j += 1 }
                emit(.name, PythonString.string(s[pos..<j]))
                pos = j
            } else if c == "'" || c == "\"" {
                try string(quote: c)
            } else if let op = Self.operators.first(where: { at(pos, $0) }) {
                switch op {
                case "(": balance.append(")")
                case "[": balance.append("]")
                case "{": balance.append("}")
                case ")", "]", "}":
                    guard let expected = balance.popLast() else { throw fail("unexpected '\(op)'") }
                    guard String(expected) == op else { throw fail("unexpected '\(op)', expected '\(expected)'") }
                default: break
                }
                emit(.op, op)
                pos += op.unicodeScalars.count
            } else {
                throw fail("unexpected character \(quotedForJinja(String(c)))")
            }
        }
    }

    private func closing(block: Bool) -> Int? {
        if block {
            if at(pos, "+%}") { return pos + 3 }
            if at(pos, "-%}") {
                var j = pos + 3
                while j < s.count && PythonString.isSpace(s[j]) { j += 1 }
                return j
            }
            if at(pos, "%}") { return pos + 2 < s.count && s[pos + 2] == "\n" ? pos + 3 : pos + 2 }
        } else {
            if at(pos, "-}}") {
                var j = pos + 3
                while j < s.count && PythonString.isSpace(s[j]) { j += 1 }
                return j
            }
            if at(pos, "}}") { return pos + 2 }
        }
        return nil
    }

    private func digits(from start: Int) -> Int {
        var j = start
        while j < s.count && (("0"..."9").contains(s[j]) || (s[j] == "_" && j > start && j + 1 < s.count && ("0"..."9").contains(s[j + 1]))) { j += 1 }
        return j
    }

    private mutating func number() {
        var j = digits(from: pos)
        var isFloat = false
        if j + 1 < s.count && s[j] == "." && ("0"..."9").contains(s[j + 1]) {
            j = digits(from: j + 1)
            isFloat = true
        }
        if j < s.count && (s[j] == "e" || s[j] == "E") {
            var k = j + 1
            if k < s.count && (s[k] == "+" || s[k] == "-") { k += 1 }
            if k < s.count && ("0"..."9").contains(s[k]) {
                j = digits(from: k)
                isFloat = true
            }
        }
        emit(isFloat ? .float : .integer, PythonString.string(s[pos..<j]).replacingOccurrences(of: "_", with: ""))
        pos = j
    }

    /// A quoted string, unescaped as jinja2 does (Python's unicode-escape codec; unknown escapes stay).
    private mutating func string(quote: Unicode.Scalar) throws {
        var j = pos + 1
        var out = String.UnicodeScalarView()
        while true {
            guard j < s.count else { throw fail("unterminated string") }
            let c = s[j]
            if c == quote { break }
            if c == "\\" && j + 1 < s.count {
                let e = s[j + 1]
                j += 2
                switch e {
                case "\n": continue
                case "\\": out.append("\\")
                case "'": out.append("'")
                case "\"": out.append("\"")
                case "a": out.append("\u{07}")
                case "b": out.append("\u{08}")
                case "f": out.append("\u{0C}")
                case "n": out.append("\n")
                case "r": out.append("\r")
                case "t": out.append("\t")
                case "v": out.append("\u{0B}")
                case "x", "u", "U":
                    let width = e == "x" ? 2 : e == "u" ? 4 : 8
                    guard j + width <= s.count, let v = UInt32(PythonString.string(s[j..<j + width]), radix: 16),
                          let scalar = Unicode.Scalar(v) else { throw fail("bad \\\(e) escape in a string") }
                    out.append(scalar)
                    j += width
                case "0"..."7":
                    var v = e.value - 48, n = 1
                    while n < 3 && j < s.count && ("0"..."7").contains(s[j]) { v = v * 8 + s[j].value - 48; j += 1; n += 1 }
                    out.append(Unicode.Scalar(v)!)
                case "N": throw JinjaFailure.unsupported("\\N{...} escape in a string")
                default:
                    out.append("\\")
                    out.append(e)
                }
                continue
            }
            out.append(c)
            j += 1
        }
        let raw = PythonString.string(s[pos...j])
        tokens.append(JinjaToken(kind: .string, value: String(out), line: line))
        line += raw.unicodeScalars.filter { $0 == "\n" }.count
        pos = j + 1
    }
}

func quotedForJinja(_ text: String) -> String { PythonString.repr(text) }
