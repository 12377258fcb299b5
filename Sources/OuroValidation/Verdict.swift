import Foundation

/// Applies PassCriteria to measured numbers. Each failed criterion becomes one reason line with the
/// value, the limit and, where a per-step version of the measure exists, the first loop step over it.
struct Verdict {
    private(set) var reasons: [String] = []
    private(set) var firstDivergingStep: Int?

    init(report r: ValidationReport, criteria c: PassCriteria) {
        if let limit = c.maxAbsLogitError {
            let first = r.steps.first { !($0.logits.maxAbsLogitError <= limit) }
            let worst = r.steps.map(\.logits.maxAbsLogitError).max() ?? 0
            if let first {
                fail("step logits max|Δlogit| \(format(worst)) > \(format(limit))", step: first.step)
            }
            var modes: [(String, Double)] = [("final", r.final.maxAbsLogitError)]
            if let w = r.exit.weighted { modes.append(("weighted exit", w.maxAbsLogitError)) }
            for key in r.thresholds { if let e = r.exit.thresholdLogits[key] { modes.append(("threshold \(key)", e.maxAbsLogitError)) } }
            for e in r.exit.exitAtStep { modes.append(("exit at loop step \(e.step)", e.logits.maxAbsLogitError)) }
            for (name, value) in modes where !(value <= limit) {
                fail("\(name) logits max|Δlogit| \(format(value)) > \(format(limit))", step: first?.step)
            }
        }
        if let limit = c.exitPDFMaxAbsError, !(r.exit.pdfMaxAbsError <= limit) {
            let first = r.steps.first { !($0.exitPDFMaxAbsError <= limit) }
            fail("exit pdf max|Δ| \(format(r.exit.pdfMaxAbsError)) > \(format(limit))", step: first?.step)
        }
        if c.requireThresholdStepMatch {
            for key in r.thresholds {
                let share = r.exit.thresholdStepAgreement[key] ?? 0
                if share < 1 {
                    fail("threshold \(key) exit steps agree on \(percent(share)) of tokens; required 100%",
                         step: nil)
                }
            }
        }
        if c.requireGreedyMatch && !r.greedy.match {
            fail("greedy tokens differ: \(r.greedy.tokensMatched)/\(r.greedy.tokensTotal) matched before the first difference",
                 step: nil)
        }
        if let limit = c.finalKLDMean, !(r.final.kldMean <= limit) {
            let first = r.steps.first { !($0.logits.kldMean <= limit) }
            fail("final KLD mean \(format(r.final.kldMean)) > \(format(limit))", step: first?.step)
        }
        if let limit = c.finalKLDP99, !(r.final.kldP99 <= limit) {
            let first = r.steps.first { !($0.logits.kldP99 <= limit) }
            fail("final KLD p99 \(format(r.final.kldP99)) > \(format(limit))", step: first?.step)
        }
        if let limit = c.finalTop1Min, !(r.final.top1Agreement >= limit) {
            let first = r.steps.first { !($0.logits.top1Agreement >= limit) }
            fail("final top-1 agreement \(percent(r.final.top1Agreement)) < \(percent(limit))", step: first?.step)
        }
        if let d = r.decodePath { checkDecodePath(d, criteria: c) }
    }

    /// The decode path against the same criteria: all of them when the cache is exact (f32, full
    /// sharing: only summation order differs), the distribution limits (KLD, top-1) otherwise, since
    /// a rounded or shared cache is a deliberate approximation with its own cost.
    private mutating func checkDecodePath(_ d: DecodePathErrors, criteria c: PassCriteria) {
        let exact = d.kvCache == "f32, full sharing"
        if exact, let limit = c.maxAbsLogitError, let first = d.steps.first(where: { !($0.logits.maxAbsLogitError <= limit) }) {
            let worst = d.steps.map(\.logits.maxAbsLogitError).max() ?? 0
            fail("decode path step logits max|Δlogit| \(format(worst)) > \(format(limit))", step: first.step)
        }
        if let limit = c.finalKLDMean, !(d.final.kldMean <= limit) {
            fail("decode path final KLD mean \(format(d.final.kldMean)) > \(format(limit))", step: nil)
        }
        if let limit = c.finalKLDP99, !(d.final.kldP99 <= limit) {
            fail("decode path final KLD p99 \(format(d.final.kldP99)) > \(format(limit))", step: nil)
        }
        if let limit = c.finalTop1Min, !(d.final.top1Agreement >= limit) {
            fail("decode path final top-1 agreement \(percent(d.final.top1Agreement)) < \(percent(limit))", step: nil)
        }
    }

    private mutating func fail(_ text: String, step: Int?) {
        reasons.append(step.map { "\(text), first over the limit at loop step \($0)" } ?? text)
        if firstDivergingStep == nil { firstDivergingStep = step }
    }
}

func percent(_ share: Double) -> String {
    share.isFinite ? String(format: "%.1f%%", share * 100) : "nan"
}
