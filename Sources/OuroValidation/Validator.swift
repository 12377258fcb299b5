import OuroModel

/// Runs a model over every prompt of a reference bundle and measures it against the reference,
/// loop step by loop step, then judges the numbers with `PassCriteria`.
public struct Validator {
    public var target: ValidationTarget
    public var modelFile: String
    /// File type name ("F32", "BF16", "Q8_0", ...), shown in the report.
    public var modelType: String
    public var criteria: PassCriteria
    /// Also run uncached greedy generation to compare with `greedy_uncached` (slower: one full forward
    /// per new token). When false the cached result is compared with both references.
    public var uncachedGreedy: Bool
    /// How many of the largest-KLD positions the report keeps (with their top-5 candidates).
    public var worstPositionCount = 10
    /// Also run every prompt through the decode path (`ValidationTarget.decodePath`) after this many
    /// prefill tokens and compare each position and loop step; nil: not run.
    public var decodePrefill: Int?
    /// With `decodePrefill`: also run the decode path with real early exit at this threshold and compare
    /// its one-at-a-time positions with the full-depth decode path (`EarlyExitErrors`); nil: not run.
    public var earlyExitThreshold: Float?
    /// Turns token ids into text for the report's worst positions (the model's tokenizer), when known.
    public var decode: (([Int]) -> String)?

    public init(target: ValidationTarget, modelFile: String, modelType: String,
                criteria: PassCriteria? = nil, uncachedGreedy: Bool = false) {
        self.target = target
        self.modelFile = modelFile
        self.modelType = modelType
        self.criteria = criteria ?? .forFileType(modelType)
        self.uncachedGreedy = uncachedGreedy
    }

    /// Validates weights loaded from a GGUF file or checkpoint folder with the runtime;
    /// criteria default to the file type's.
    public init(weights: OuroWeights, criteria: PassCriteria? = nil, uncachedGreedy: Bool = false,
                kv: KVCacheOptions = .exact) {
        let target = OuroRunnerTarget(weights: weights, kv: kv)
        // A quantized file names its recipe ("q4_k_m", "loop"...): its criteria, and the type shown
        // for a mix ("mixed (q4_k_m)").
        let recipe = weights.quantizationRecipe
        var fileCriteria = PassCriteria.forFileType(recipe ?? target.fileTypeName)
        if fileCriteria == .lossless && weights.storesSourceExactly == false { fileCriteria = .nearLossless }
        let typeName = weights.fileType == nil && recipe != nil ? "mixed (\(recipe!))" : target.fileTypeName
        self.init(target: target, modelFile: weights.source, modelType: typeName,
                  criteria: criteria ?? fileCriteria, uncachedGreedy: uncachedGreedy)
    }

    /// `progress` receives one short line per prompt.
    public func validate(bundle: any ReferenceSource, progress: ((String) -> Void)? = nil) throws -> ValidationReport {
        try bundle.check(against: target.dimensions)
        let s = bundle.steps, v = bundle.vocab
        var acc = Accumulators(steps: s, bundle: bundle)
        var promptResults: [PromptResult] = []
        var worst = WorstPositions(capacity: worstPositionCount)
        var modelExit = [Double](repeating: 0, count: s), referenceExit = [Double](repeating: 0, count: s)
        var decodeSteps = [LogitComparison](repeating: LogitComparison(), count: s), decodeFinal = LogitComparison()
        var earlyVsFull = LogitComparison(), earlyVsThreshold = LogitComparison(), earlyLoopSteps: [Int] = []

        for layout in bundle.prompts {
            let ref = try bundle.load(layout)
            let t = layout.tokens
            let request = OutputRequest(thresholds: layout.thresholds.map(\.value),
                                        exitAtSteps: layout.exitAtSteps, weighted: layout.hasWeighted)
            let run = try target.run(tokens: ref.inputIDs, request: request)
            try checkShapes(run, request: request, tokens: t, steps: s, vocab: v, hidden: bundle.hidden)

            var stepMax: [Double] = []
            for step in 0..<s {
                let refStep = Array(ref.stepLogits[step * t * v..<(step + 1) * t * v])
                acc.steps[step].add(model: run.stepLogits[step], reference: refStep, tokens: t, vocab: v)
                stepMax.append(ParityMetrics.maxAbsError(run.stepLogits[step], refStep))
                let refGate = Array(ref.gateLogits[step * t..<(step + 1) * t])
                acc.gate[step] = max(acc.gate[step], ParityMetrics.maxAbsError(run.gateLogits[step], refGate))
                if let hidden = bundle.hidden, let refHidden = ref.stepHidden, let modelHidden = run.stepHidden {
                    let slice = Array(refHidden[step * t * hidden..<(step + 1) * t * hidden])
                    acc.hidden[step] = max(acc.hidden[step], ParityMetrics.maxAbsError(modelHidden[step], slice))
                }
            }
            var promptPDF = 0.0
            for position in 0..<t {
                for step in 0..<s {
                    let d = abs(Double(run.exitPDF[position][step]) - Double(ref.exitPDF[position * s + step]))
                    let e = d.isNaN ? Double.infinity : d
                    acc.pdf[step] = max(acc.pdf[step], e)
                    promptPDF = max(promptPDF, e)
                    modelExit[step] += Double(run.exitPDF[position][step])
                    referenceExit[step] += Double(ref.exitPDF[position * s + step])
                }
            }

            var final = LogitComparison()
            let finalKL = final.add(model: run.finalLogits, reference: ref.finalLogits, tokens: t, vocab: v)
            worst.offer(prompt: layout.index, inputIDs: ref.inputIDs, labels: ref.labels, kl: finalKL,
                        model: run.finalLogits, reference: ref.finalLogits, vocab: v)
            acc.final.add(model: run.finalLogits, reference: ref.finalLogits, tokens: t, vocab: v)
            if let refWeighted = ref.weightedLogits, let modelWeighted = run.weightedLogits {
                acc.weighted.add(model: modelWeighted, reference: refWeighted, tokens: t, vocab: v)
                acc.hasWeighted = true
            }
            for (i, threshold) in ref.thresholds.enumerated() {
                acc.thresholdLogits[threshold.key, default: LogitComparison()]
                    .add(model: run.thresholdLogits[i], reference: threshold.logits, tokens: t, vocab: v)
                let same = zip(run.thresholdExitSteps[i], threshold.exitSteps).filter { $0 == $1 }.count
                acc.thresholdSteps[threshold.key, default: (0, 0)].matched += same
                acc.thresholdSteps[threshold.key, default: (0, 0)].total += t
            }
            for (i, fixed) in ref.exitAtStep.enumerated() {
                acc.exitAtStep[fixed.step, default: LogitComparison()]
                    .add(model: run.exitAtStepLogits[i], reference: fixed.logits, tokens: t, vocab: v)
            }
            if let labels = ref.labels {
                let r = ParityMetrics.crossEntropy(logits: ref.finalLogits, labels: labels, width: v)
                let m = ParityMetrics.crossEntropy(logits: run.finalLogits, labels: labels, width: v)
                acc.ceReference += r.sum
                acc.ceModel += m.sum
                acc.ceTokens += r.count
            }

            var generated: [Int]?
            let greedyReference = ref.greedyCached ?? ref.greedyUncached
            if let greedyReference {
                let tokens = try target.greedy(prompt: ref.inputIDs, maxNewTokens: greedyReference.count, cached: true)
                generated = tokens
                if let cachedRef = ref.greedyCached { acc.cached.add(tokens, cachedRef) }
                if let uncachedRef = ref.greedyUncached {
                    let uncached = uncachedGreedy
                        ? try target.greedy(prompt: ref.inputIDs, maxNewTokens: uncachedRef.count, cached: false)
                        : tokens
                    acc.uncached.add(uncached, uncachedRef)
                }
            }
            if let decodePrefill {
                let decoded = try target.decodePath(tokens: ref.inputIDs, prefill: decodePrefill)
                try checkShapes(decoded, request: OutputRequest(thresholds: [], exitAtSteps: [], weighted: false),
                                tokens: t, steps: s, vocab: v, hidden: nil)
                for step in 0..<s {
                    decodeSteps[step].add(model: decoded.stepLogits[step],
                                          reference: Array(ref.stepLogits[step * t * v..<(step + 1) * t * v]), tokens: t, vocab: v)
                }
                decodeFinal.add(model: decoded.finalLogits, reference: ref.finalLogits, tokens: t, vocab: v)
                if let threshold = earlyExitThreshold {
                    let early = try target.earlyExitDecodePath(tokens: ref.inputIDs, prefill: decodePrefill, threshold: threshold)
                    guard early.logits.count == t * v, early.loopSteps.count == t else {
                        throw ValidationFailure.modelOutputMismatch(path: modelFile, what: "early-exit decode path is not [T=\(t) x V=\(v)]")
                    }
                    // Only the one-at-a-time positions can exit early; the prefill ran every step.
                    let first = min(decodePrefill, t), n = t - first
                    if n > 0 {
                        let picked = Array(early.logits[(first * v)...])
                        earlyVsFull.add(model: picked, reference: Array(decoded.finalLogits[(first * v)...]), tokens: n, vocab: v)
                        let atExit = Self.thresholdLogits(decoded, threshold: threshold, tokens: t, vocab: v)
                        earlyVsThreshold.add(model: picked, reference: Array(atExit[(first * v)...]), tokens: n, vocab: v)
                        earlyLoopSteps += early.loopSteps[first...]
                    }
                }
            }
            promptResults.append(PromptResult(prompt: layout.index, tokens: t, final: final.summary,
                                              stepMaxAbsLogitError: stepMax, exitPDFMaxAbsError: promptPDF,
                                              greedyCached: generated, greedyReference: greedyReference))
            progress?("prompt p\(layout.index): \(t) tokens, final max|Δlogit| \(format(final.summary.maxAbsLogitError))")
        }

        var report = acc.report(bundle: bundle, criteria: criteria, modelFile: modelFile, modelType: modelType,
                                prompts: promptResults)
        let positions = Double(max(bundle.tokenCount, 1))
        report.exitDistribution = ExitDistribution(model: modelExit.map { $0 / positions },
                                                   reference: referenceExit.map { $0 / positions })
        report.finalKLDHistogram = KLDHistogram(values: acc.final.positionKL)
        report.worstPositions = worst.items.map { item in
            var item = item
            if let decode {
                item.contextText = decode(item.context)
                item.labelText = item.label.map { decode([$0]) }
                item.referenceTop = item.referenceTop.map { var c = $0; c.text = decode([c.id]); return c }
                item.modelTop = item.modelTop.map { var c = $0; c.text = decode([c.id]); return c }
            }
            return item
        }
        if let decodePrefill {
            report.decodePath = DecodePathErrors(
                kvCache: target.kvCacheDescription, prefillTokens: decodePrefill, final: decodeFinal.summary,
                steps: decodeSteps.indices.map { StepLogits(step: $0 + 1, logits: decodeSteps[$0].summary) })
            if let threshold = earlyExitThreshold {
                report.decodePath?.earlyExit = EarlyExitErrors(
                    threshold: Double(threshold), loopCount: s, positions: earlyLoopSteps.count,
                    meanLoopSteps: earlyLoopSteps.isEmpty ? 0 : Double(earlyLoopSteps.reduce(0, +)) / Double(earlyLoopSteps.count),
                    maxLoopSteps: earlyLoopSteps.max() ?? 0,
                    vsFullDepth: earlyVsFull.summary, vsThresholdFullDepth: earlyVsThreshold.summary)
            }
        }
        let verdict = Verdict(report: report, criteria: criteria)
        report.pass = verdict.reasons.isEmpty
        report.reasons = verdict.reasons
        report.firstDivergingStep = verdict.firstDivergingStep
        return report
    }

    /// [T*V]: each position's logits at its threshold exit step, picked from a full-depth run by
    /// `LoopOutputs.exitSteps`' rule (cumulative exit probability summed in double, compared as float).
    static func thresholdLogits(_ run: ModelRun, threshold: Float, tokens t: Int, vocab v: Int) -> [Float] {
        let steps = run.stepLogits.count
        var picked: [Float] = []
        picked.reserveCapacity(t * v)
        for position in 0..<t {
            var sum: Double = 0, exit = steps - 1
            for step in 0..<steps {
                sum += Double(run.exitPDF[position][step])
                if Float(sum) >= threshold { exit = step; break }
            }
            picked += run.stepLogits[exit][(position * v)..<((position + 1) * v)]
        }
        return picked
    }

    private func checkShapes(_ run: ModelRun, request: OutputRequest, tokens t: Int, steps s: Int,
                             vocab v: Int, hidden: Int?) throws {
        func fail(_ what: String) -> ValidationFailure { .modelOutputMismatch(path: modelFile, what: what) }
        guard run.stepLogits.count == s, run.stepLogits.allSatisfy({ $0.count == t * v }) else {
            throw fail("step logits are not \(s) x [T=\(t) x V=\(v)]")
        }
        guard run.gateLogits.count == s, run.gateLogits.allSatisfy({ $0.count == t }) else {
            throw fail("gate logits are not \(s) x [T=\(t)]")
        }
        guard run.exitPDF.count == t, run.exitPDF.allSatisfy({ $0.count == s }) else {
            throw fail("exit pdf is not [T=\(t)] x [S=\(s)]")
        }
        if let hidden, let h = run.stepHidden, h.count != s || !h.allSatisfy({ $0.count == t * hidden }) {
            throw fail("step hidden states are not \(s) x [T=\(t) x H=\(hidden)]")
        }
        let rows = [run.finalLogits] + (run.weightedLogits.map { [$0] } ?? []) + run.thresholdLogits + run.exitAtStepLogits
        guard rows.allSatisfy({ $0.count == t * v }) else { throw fail("exit-mode logits are not [T=\(t) x V=\(v)]") }
        guard run.thresholdLogits.count == request.thresholds.count,
              run.thresholdExitSteps.count == request.thresholds.count,
              run.thresholdExitSteps.allSatisfy({ $0.count == t }),
              run.exitAtStepLogits.count == request.exitAtSteps.count,
              (run.weightedLogits != nil) == request.weighted else {
            throw fail("exit modes do not answer the request")
        }
    }
}
