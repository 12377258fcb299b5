import Foundation

/// Renders a parsed template. Scoping follows jinja2: each `for` iteration gets its own scope (a `set`
/// inside a loop body is gone after the iteration; `namespace()` is how templates carry values out),
/// `if` blocks share the enclosing scope.
final class JinjaInterpreter {
    /// Output larger than this is refused: a template is untrusted input (`'x' * 10**9`).
    static let maxOutput = 64 << 20

    private final class Scope {
        let parent: Scope?
        var values: [String: JinjaValue] = [:]
        init(parent: Scope?) { self.parent = parent }
        func lookup(_ name: String) -> JinjaValue? { values[name] ?? parent?.lookup(name) }
    }

    private enum LoopControl: Error { case breakLoop, continueLoop }

    private var output = ""
    private var outputCount = 0
    /// The line of the statement being run, for error messages.
    private(set) var line = 1

    func render(_ nodes: [JinjaNode], variables: [String: JinjaValue]) throws -> String {
        output = ""
        outputCount = 0
        let root = Scope(parent: nil)
        root.values = variables
        try run(nodes, root)
        return output
    }

    private func emit(_ text: String) throws {
        outputCount += text.utf8.count
        guard outputCount <= Self.maxOutput else { throw JinjaFailure.evaluation("output larger than \(Self.maxOutput >> 20) MiB") }
        output += text
    }

    private func run(_ nodes: [JinjaNode], _ scope: Scope) throws {
        for node in nodes {
            switch node {
            case let .text(text):
                try emit(text)
            case let .output(e, line):
                self.line = line
                try emit(try evaluate(e, scope).text())
            case let .conditional(branches, otherwise, line):
                self.line = line
                if let taken = try branches.first(where: { try evaluate($0.0, scope).truthy }) {
                    try run(taken.1, scope)
                } else {
                    try run(otherwise, scope)
                }
            case let .loop(targets, iterable, filter, body, otherwise, line):
                self.line = line
                try loop(targets, try evaluate(iterable, scope).iterated(), filter, body, otherwise, scope)
            case let .assign(targets, value, line):
                self.line = line
                try bind(targets, try evaluate(value, scope), in: scope)
            case let .assignAttribute(name, attribute, value, line):
                self.line = line
                guard case let .namespace(ns)? = scope.lookup(name) else {
                    throw JinjaFailure.evaluation("can not assign attribute on non-namespace object '\(name)'")
                }
                ns.members[attribute] = try evaluate(value, scope)
            case let .assignBlock(name, body, line):
                self.line = line
                let saved = output, savedCount = outputCount
                output = ""
                try run(body, scope)
                let captured = output
                output = saved
                outputCount = savedCount
                scope.values[name] = .string(captured)
            case let .breakLoop(line):
                self.line = line
                throw LoopControl.breakLoop
            case let .continueLoop(line):
                self.line = line
                throw LoopControl.continueLoop
            }
        }
    }

    private func bind(_ targets: [String], _ value: JinjaValue, in scope: Scope) throws {
        if targets.count == 1 {
            scope.values[targets[0]] = value
            return
        }
        let items = try value.iterated()
        guard items.count == targets.count else {
            throw JinjaFailure.evaluation("cannot unpack \(items.count) values into \(targets.count) names")
        }
        for (name, item) in zip(targets, items) { scope.values[name] = item }
    }

    private func loop(_ targets: [String], _ all: [JinjaValue], _ filter: JinjaExpr?, _ body: [JinjaNode],
                      _ otherwise: [JinjaNode], _ scope: Scope) throws {
        var items = all
        if let filter {
            // jinja2 filters before looping, so loop.index and loop.length count the kept items only.
            items = try all.filter { item in
                let s = Scope(parent: scope)
                try bind(targets, item, in: s)
                return try evaluate(filter, s).truthy
            }
        }
        if items.isEmpty {
            try run(otherwise, scope)
            return
        }
        for (index, item) in items.enumerated() {
            let s = Scope(parent: scope)
            s.values["loop"] = .loop(LoopState(index0: index, length: items.count,
                                               previous: index > 0 ? items[index - 1] : nil,
                                               next: index + 1 < items.count ? items[index + 1] : nil))
            try bind(targets, item, in: s)
            do {
                try run(body, s)
            } catch LoopControl.continueLoop {
                continue
            } catch LoopControl.breakLoop {
                break
            }
        }
    }

    // MARK: expressions

    /// Values built by a template nest at most this deep (JSON input is parsed to depth 64), so that
    /// printing, comparing and freeing them cannot exhaust the stack.
    static let maxValueDepth = 100

    private func checkedDepth(_ value: JinjaValue) throws -> JinjaValue {
        if value.nests(deeperThan: Self.maxValueDepth) { throw JinjaFailure.evaluation("values nested more than \(Self.maxValueDepth) deep") }
        return value
    }

    private func evaluate(_ e: JinjaExpr, _ scope: Scope) throws -> JinjaValue {
        switch e {
        case let .literal(v): return v
        case let .name(name): return scope.lookup(name) ?? JinjaBuiltins.global(name) ?? .undefined(name)
        case let .list(items): return try checkedDepth(.list(try items.map { try evaluate($0, scope) }))
        case let .tuple(items): return try checkedDepth(.tuple(try items.map { try evaluate($0, scope) }))
        case let .dict(pairs):
            var d = JinjaDict()
            for (k, v) in pairs {
                guard case let .string(key) = try evaluate(k, scope) else { throw JinjaFailure.unsupported("dict keys that are not strings") }
                d[key] = try evaluate(v, scope)
            }
            return try checkedDepth(.dict(d))
        case let .attribute(base, name):
            return try JinjaBuiltins.attribute(try evaluate(base, scope), name)
        case let .item(base, index):
            return try JinjaBuiltins.item(try evaluate(base, scope), try evaluate(index, scope))
        case let .slice(base, start, stop, step):
            return try JinjaBuiltins.slice(try evaluate(base, scope), try start.map { try evaluate($0, scope) },
                                           try stop.map { try evaluate($0, scope) }, try step.map { try evaluate($0, scope) })
        case let .call(callee, positional, keywords):
            let f = try evaluate(callee, scope)
            let args = try positional.map { try evaluate($0, scope) }
            let kwargs = try keywords.map { ($0.0, try evaluate($0.1, scope)) }
            switch f {
            case let .callable(c): return try c.call(args, kwargs)
            case let .undefined(name):
                if name == "strftime_now" { throw JinjaFailure.unsupported("function strftime_now (the date is not reproducible)") }
                throw JinjaFailure.evaluation("'\(name)' is undefined")
            default: throw JinjaFailure.evaluation("'\(f.typeName)' object is not callable")
            }
        case let .filter(base, name, positional, keywords):
            let value = try evaluate(base, scope)
            let args = try positional.map { try evaluate($0, scope) }
            let kwargs = try keywords.map { ($0.0, try evaluate($0.1, scope)) }
            return try JinjaBuiltins.filter(name, value, args, kwargs)
        case let .test(base, name, positional, negated):
            let result = try JinjaBuiltins.test(name, try evaluate(base, scope), try positional.map { try evaluate($0, scope) })
            return .bool(result != negated)
        case let .unary(op, operand):
            let v = try evaluate(operand, scope)
            switch op {
            case "not": return .bool(!v.truthy)
            case "-":
                switch v.numeric {
                case let .int(x)?:
                    let (r, o) = 0.subtractingReportingOverflow(x)
                    if o { throw JinjaFailure.unsupported("integers beyond 64 bits") }
                    return .int(r)
                case let .double(x)?: return .double(-x)
                case nil: throw JinjaFailure.evaluation("bad operand type for unary -: '\(v.typeName)'")
                }
            default:
                guard let n = v.numeric else { throw JinjaFailure.evaluation("bad operand type for unary +: '\(v.typeName)'") }
                if case let .int(x) = n { return .int(x) }
                return .double(n.double)
            }
        case let .binary(op, lhs, rhs):
            let a = try evaluate(lhs, scope)
            switch op {
            case "and": return a.truthy ? try evaluate(rhs, scope) : a
            case "or": return a.truthy ? a : try evaluate(rhs, scope)
            default: return try JinjaBuiltins.arithmetic(op, a, try evaluate(rhs, scope))
            }
        case let .compare(first, ops):
            var left = try evaluate(first, scope)
            for (op, rightExpr) in ops {
                let right = try evaluate(rightExpr, scope)
                guard try JinjaBuiltins.compare(op, left, right) else { return .bool(false) }
                left = right
            }
            return .bool(true)
        case let .conditional(condition, then, otherwise):
            if try evaluate(condition, scope).truthy { return try evaluate(then, scope) }
            return try otherwise.map { try evaluate($0, scope) } ?? .undefined("inline if")
        }
    }
}
