/// Where reference outputs come from: a bundle file, or a lossless model run on the fly
/// (`LiveReference`). The validator asks for one prompt at a time, so memory follows the largest
/// prompt, not the whole reference.
public protocol ReferenceSource: AnyObject {
    /// Shown as `bundle_file` in the report: the bundle, or the baseline model.
    var path: String { get }
    /// True when the reference names our format (bundles with `__metadata__.format`, and live runs).
    var declaresFormat: Bool { get }
    var prompts: [PromptLayout] { get }
    /// Loop steps S, vocabulary V, hidden size H (nil when no prompt carries step_hidden).
    var steps: Int { get }
    var vocab: Int { get }
    var hidden: Int? { get }
    /// Checks S, V and H against the model being validated.
    func check(against model: ModelDimensions) throws
    /// One prompt's reference tensors.
    func load(_ layout: PromptLayout) throws -> ReferencePrompt
}

extension ReferenceSource {
    public var tokenCount: Int { prompts.reduce(0) { $0 + $1.tokens } }

    /// Checks S, V and H of this reference against a model's configuration.
    func checkDimensions(against model: ModelDimensions) throws {
        func fail(_ name: String, _ shape: [Int], _ expected: String) -> ValidationFailure {
            .shapeMismatch(path: path, name: name, shape: shape, expected: expected)
        }
        let first = prompts[0].prefix
        if steps != model.steps {
            throw fail(first + "step_logits", [steps, prompts[0].tokens, vocab], "S = \(model.steps) loop steps (model config)")
        }
        if vocab != model.vocab {
            throw fail(first + "step_logits", [steps, prompts[0].tokens, vocab], "V = \(model.vocab) (model vocab_size)")
        }
        if let hidden, hidden != model.hidden {
            throw fail(first + "step_hidden", [steps, prompts[0].tokens, hidden], "H = \(model.hidden) (model hidden_size)")
        }
    }
}

extension ThresholdKey {
    /// `key` is the text used in tensor names ("0.5"); nil when it is not a finite number.
    public init?(_ key: String) {
        guard let value = Float(key), value.isFinite else { return nil }
        self.init(key: key, value: value)
    }
}
