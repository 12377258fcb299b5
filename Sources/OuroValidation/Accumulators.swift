/// Running totals of one validation over all prompts; turned into a report at the end.
struct Accumulators {
    var steps: [LogitComparison]
    var hidden: [Double]
    var gate: [Double]
    var pdf: [Double]
    var final = LogitComparison()
    var weighted = LogitComparison()
    var hasWeighted = false
    var thresholdLogits: [String: LogitComparison] = [:]
    var thresholdSteps: [String: (matched: Int, total: Int)] = [:]
    var exitAtStep: [Int: LogitComparison] = [:]
    var cached = GreedyTally()
    var uncached = GreedyTally()
    var ceReference = 0.0, ceModel = 0.0, ceTokens = 0
    let hasHidden: Bool

    init(steps s: Int, bundle: any ReferenceSource) {
        steps = Array(repeating: LogitComparison(), count: s)
        hidden = Array(repeating: 0, count: s)
        gate = Array(repeating: 0, count: s)
        pdf = Array(repeating: 0, count: s)
        hasHidden = bundle.hidden != nil && bundle.prompts.allSatisfy(\.hasStepHidden)
    }

    func report(bundle: any ReferenceSource, criteria: PassCriteria, modelFile: String, modelType: String,
                prompts: [PromptResult]) -> ValidationReport {
        let stepErrors = steps.indices.map { i in
            StepErrors(step: i + 1, logits: steps[i].summary, hiddenMaxAbsError: hasHidden ? hidden[i] : nil,
                       gateLogitMaxAbsError: gate[i], exitPDFMaxAbsError: pdf[i])
        }
        let exit = ExitErrors(
            pdfMaxAbsError: pdf.max() ?? 0,
            thresholdStepAgreement: thresholdSteps.mapValues { $0.total == 0 ? 1 : Double($0.matched) / Double($0.total) },
            thresholdLogits: thresholdLogits.mapValues(\.summary),
            exitAtStep: exitAtStep.keys.sorted().map { StepLogits(step: $0 + 1, logits: exitAtStep[$0]!.summary) },
            weighted: hasWeighted ? weighted.summary : nil)
        // The headline greedy result is the cached one when the bundle has it.
        let headline = cached.total > 0 ? cached : uncached
        let greedy = GreedyResult(match: headline.matched == headline.total && cached.allEqual && uncached.allEqual,
                                  tokensMatched: headline.matched, tokensTotal: headline.total,
                                  cached: cached.count, uncached: uncached.count)
        var perplexity: PerplexityResult?
        if ceTokens > 0 {
            let r = _exp(ceReference / Double(ceTokens)), m = _exp(ceModel / Double(ceTokens))
            perplexity = PerplexityResult(reference: r, model: m, ratio: m / r, tokens: ceTokens)
        }
        let thresholdKeys = Set(bundle.prompts.flatMap { $0.thresholds.map(\.key) })
        var report = ValidationReport(
            pass: false, modelFile: modelFile, modelType: modelType, bundleFile: bundle.path,
            bundleDeclaresFormat: bundle.declaresFormat, promptCount: bundle.prompts.count,
            tokenCount: bundle.tokenCount, criteria: criteria,
            thresholds: thresholdKeys.sorted { (Float($0) ?? 0) < (Float($1) ?? 0) },
            final: final.summary, steps: stepErrors, exit: exit, greedy: greedy, perplexity: perplexity,
            prompts: prompts, reasons: [], firstDivergingStep: nil)
        if let first = stepErrors.first?.logits.kldMean, let last = stepErrors.last?.logits.kldMean, first > 0 {
            report.kldGrowth = last / first
        }
        return report
    }
}

/// Greedy tokens: common-prefix length summed over prompts.
struct GreedyTally {
    var matched = 0, total = 0, prompts = 0
    var allEqual = true

    mutating func add(_ model: [Int], _ reference: [Int]) {
        let prefix = zip(model, reference).prefix { $0 == $1 }.count
        matched += prefix
        total += reference.count
        prompts += 1
        if model != reference { allEqual = false }
    }

    var count: GreedyCount { GreedyCount(matched: matched, total: total, prompts: prompts) }
}
