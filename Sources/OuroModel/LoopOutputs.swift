import Foundation

/// Everything one forward pass produces, step by step, and the exit modes computed from it.
/// All arithmetic follows upstream OuroForCausalLM in float32.
public struct LoopOutputs: Sendable {
    public let steps: Int, vocab: Int, hidden: Int
    public private(set) var tokens: Int
    /// [S][T*V]: lm_head of each step's normed state; empty for steps whose logits were not
    /// computed (see `LogitSelection`) or not run.
    public var stepLogits: [[Float]]
    /// [S][T*H]: the state after each step, after model.norm (the next step's input).
    public var stepHidden: [[Float]]
    /// [S][T]: pre-sigmoid exit gate of each step (only the steps run: `executedSteps` of them).
    public var gateLogits: [[Float]]
    /// Loop steps actually run (fewer than `steps` after an early exit or a draft).
    public var executedSteps: Int { gateLogits.count }
    /// Logits picked per position while the steps ran (threshold mode without every step's logits).
    var precomputed: (mode: ExitMode, logits: [Float])?

    public init(steps: Int, tokens: Int, vocab: Int, hidden: Int,
                stepLogits: [[Float]], stepHidden: [[Float]], gateLogits: [[Float]]) {
        self.steps = steps
        self.tokens = tokens
        self.vocab = vocab
        self.hidden = hidden
        self.stepLogits = stepLogits
        self.stepHidden = stepHidden
        self.gateLogits = gateLogits
    }

    /// These outputs followed by `later`'s (the positions after them), step by step.
    public func appending(_ later: LoopOutputs) -> LoopOutputs {
        var result = self
        result.append(later)
        return result
    }

    /// Adds `later`'s positions after these, step by step.
    public mutating func append(_ later: LoopOutputs) {
        precondition(later.steps == steps && later.vocab == vocab && later.hidden == hidden, "LoopOutputs: shapes")
        for s in 0..<steps {
            stepLogits[s] += later.stepLogits[s]
            stepHidden[s] += later.stepHidden[s]
            gateLogits[s] += later.gateLogits[s]
        }
        tokens += later.tokens
    }

    /// [T][S]: λ_s = σ(g_s); p_s = λ_s Π_{j<s}(1−λ_j) for s < S−1; p_{S−1} = the remaining mass.
    public func exitPDF() -> [[Float]] {
        (0..<tokens).map { t in
            var remaining: Float = 1
            return (0..<steps).map { s in
                if s == steps - 1 { return remaining }
                let lambda = 1 / (1 + expf(-gateLogits[s][t]))
                let p = lambda * remaining
                remaining = remaining * (1 - lambda)
                return p
            }
        }
    }

    /// Per token, the first step whose cumulative exit probability is >= threshold, else S−1.
    public func exitSteps(threshold: Float) -> [Int] {
        exitPDF().map { pdf in
            // torch.cumsum on CPU accumulates float32 in double and rounds each partial sum to float.
            var sum: Double = 0
            for (s, p) in pdf.enumerated() {
                sum += Double(p)
                if Float(sum) >= threshold { return s }
            }
            return steps - 1
        }
    }

    /// [T*V] logits selected by `mode`.
    public func logits(_ mode: ExitMode) -> [Float] {
        if let precomputed, precomputed.mode == mode { return precomputed.logits }
        switch mode {
        case .lastStep:
            return stepLogits[steps - 1]
        case let .step(k):
            return stepLogits[(0..<steps).contains(k) ? k : steps - 1]
        case let .threshold(q):
            var result = [Float](repeating: 0, count: tokens * vocab)
            for (t, s) in exitSteps(threshold: q).enumerated() {
                result[t * vocab ..< (t + 1) * vocab] = stepLogits[s][t * vocab ..< (t + 1) * vocab]
            }
            return result
        case .weighted:
            let pdf = exitPDF()
            var result = [Float](repeating: 0, count: tokens * vocab)
            for t in 0..<tokens {
                for s in 0..<steps {
                    let w = pdf[t][s]
                    let row = stepLogits[s]
                    for i in t * vocab ..< (t + 1) * vocab {
                        // Same order as upstream: l_0·w_0, then running sum + l_s·w_s.
                        result[i] = s == 0 ? row[i] * w : result[i] + row[i] * w
                    }
                }
            }
            return result
        }
    }
}
