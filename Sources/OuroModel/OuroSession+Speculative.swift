import Foundation

/// What one speculative append did.
public struct SpeculationResult: Sendable {
    /// Drafted tokens the full model kept, in order (the session holds them after the appended token).
    public let accepted: [Int]
    /// Tokens drafted (and verified).
    public let drafted: Int
    /// The full model's logits after the last kept token (as `append` returns them).
    public let logits: [Float]
    /// The next token when speculative sampling already drew it (after a rejection, from the residual
    /// distribution); nil: draw it from `logits` as after `append`.
    public let next: Int?
}

extension OuroSession {
    /// Self-speculative decoding: appends `token`, drafts up to `draftTokens` more with the first
    /// `draftSteps` loop steps (the same weights, fewer steps), runs `token` and the drafts through the
    /// full model in one pass of `draftTokens + 1` positions, keeps the drafts the full model agrees with
    /// and rolls the cache back past the first disagreement.
    ///
    /// Greedy (`sampler` at temperature 0): a draft is kept when it is the token the full model's
    /// logits at that position pick, and the verification pass computes each position's logits with
    /// the decode kernels (`LinearKernels.decodeIdentical`), so the kept tokens and the returned logits
    /// are bit for bit those of appending one token at a time. Sampling: the speculative-sampling rule
    /// (keep draft d with probability min(1, p(d)/q(d)), else draw from max(0, p − q) renormalized and
    /// stop), so each token's distribution is the full model's; the random draws differ from plain
    /// sampling's, so the tokens do too.
    ///
    /// `minDraftProbability`: drafting stops early at a draft whose probability under the draft
    /// distribution (the first D steps' softmax, after the sampler's processors when sampling) is
    /// below it; that token is not proposed. Rejected drafts cost a draft and a verified row each, and
    /// a confident draft is the one the full model keeps. The decision reads the draft only, so output
    /// is unchanged (greedy: the same tokens; sampled: the same distribution). 0: always K drafts.
    public func appendSpeculating(_ token: Int, draftTokens: Int, draftSteps: Int, minDraftProbability: Double = 0,
                                  sampler: inout Sampler) throws -> SpeculationResult {
        let S = runner.config.loopCount
        guard (1..<S).contains(draftSteps) else {
            throw ModelError.invalidRequest("draft steps \(draftSteps) must be in 1..<\(S) (the loop count)")
        }
        guard draftTokens >= 0 else { throw ModelError.invalidRequest("draft tokens \(draftTokens) must be 0 or more") }
        // Under last/mean sharing a token's kept K/V comes from its last step, which the next token's
        // first step reads: one pass over several new tokens cannot compute what decoding does.
        guard cache.options.sharing == .full else {
            throw ModelError.invalidRequest("self-speculative decoding needs full K/V sharing (this session's is \(cache.options.sharing.rawValue))")
        }
        try runner.validate([token])
        let K = min(draftTokens, remainingPositions - 1)
        guard K > 0 else {
            return SpeculationResult(accepted: [], drafted: 0, logits: try append([token]), next: nil)
        }
        let n = tokens.count
        try cache.reserve(n + K + 1)
        let greedy = sampler.options.temperature <= 0

        // Draft: D steps per token. Those D steps are exactly what decoding the token computes
        // first (one-token calls, the same cache contents), so the verification pass starts at step
        // D from the drafts' states and K/V when the exit mode reads one step at or after D; the last
        // draft then runs its D steps too. The deeper slots are rewritten by the verification pass.
        let single = try singleActivations()
        let resumes = LogitSelection.exit(exit).singleStep(loopCount: runner.config.loopCount).map { $0 >= draftSteps } ?? false
        var draft: [Int] = [], draftProbabilities: [[(token: Int, probability: Double)]] = []
        var states: [Float] = []
        var input = token
        // States of [token, d1 ...] after step D-1, one per run below; the batch's last entry needs
        // one too, so a full set of K drafts is followed by one more run (below).
        var stoppedEarly = false
        for _ in 0..<K {
            let outputs = runner.run([input][...], cache: cache, activations: single, lastPositionOnly: true,
                                     logits: .exit(.step(draftSteps - 1)), depth: .firstSteps(draftSteps))
            states += outputs.stepHidden[draftSteps - 1]
            let logits = outputs.logits(.step(draftSteps - 1))
            let context = tokens + [token] + draft
            let proposal: Int
            var q: [(token: Int, probability: Double)] = []
            if greedy {
                proposal = sampler.next(logits, context: context)
                if minDraftProbability > 0 && Self.softmaxProbability(of: proposal, in: logits) < minDraftProbability {
                    stoppedEarly = true
                    break
                }
            } else {
                q = sampler.probabilities(logits, context: context)
                proposal = Self.draw(q, &sampler)
                let p = q.first { $0.token == proposal }?.probability ?? 0
                if minDraftProbability > 0 && p < minDraftProbability {
                    stoppedEarly = true
                    break
                }
                draftProbabilities.append(q)
            }
            input = proposal
            draft.append(input)
        }
        if draft.isEmpty && !resumes {
            // Nothing proposed: plain decoding of `token` (its first D steps are recomputed).
            cache.truncate(to: n)
            return SpeculationResult(accepted: [], drafted: 0, logits: try append([token]), next: nil)
        }
        if resumes && !stoppedEarly {
            let outputs = runner.run([input][...], cache: cache, activations: single, lastPositionOnly: true,
                                     logits: .exit(.step(draftSteps - 1)), depth: .firstSteps(draftSteps))
            states += outputs.stepHidden[draftSteps - 1]
        }
        cache.truncate(to: n)

        // Verify every position with the full model in one pass.
        let batch = [token] + draft
        if (verification?.tokens ?? 0) < batch.count {
            verification = try runner.makeActivations(tokens: batch.count, context: cache.limit)
        }
        let outputs = runner.run(batch[...], cache: cache, activations: verification!, lastPositionOnly: false, logits: .exit(exit),
                                 decodeIdentical: rowAttention, resume: resumes ? (draftSteps, states) : nil)
        let all = outputs.logits(exit)
        let V = runner.config.vocabSize
        func full(_ i: Int) -> [Float] { Array(all[i * V ..< (i + 1) * V]) }

        var kept = 0
        var replacement: Int?
        while kept < draft.count {
            let context = tokens + [token] + draft.prefix(kept)
            let logits = full(kept)
            if greedy {
                guard sampler.next(logits, context: context) == draft[kept] else { break }
            } else {
                let p = sampler.probabilities(logits, context: context)
                let d = draft[kept]
                let pd = p.first { $0.token == d }?.probability ?? 0
                let qd = draftProbabilities[kept].first { $0.token == d }?.probability ?? 0
                if qd > 0 && sampler.nextUniform() < pd / qd {
                    kept += 1
                    continue
                }
                // Rejected: the next token comes from the residual distribution.
                replacement = Self.drawResidual(p, minus: draftProbabilities[kept], &sampler)
                break
            }
            kept += 1
        }
        cache.truncate(to: n + 1 + kept)
        recordAppended(Array(batch.prefix(1 + kept)))
        draftedTokens += draft.count
        acceptedDrafts += kept
        return SpeculationResult(accepted: Array(draft.prefix(kept)), drafted: draft.count, logits: full(kept), next: replacement)
    }

    /// softmax(logits)[token], for the greedy draft's confidence.
    static func softmaxProbability(of token: Int, in logits: [Float]) -> Double {
        let top = logits.max() ?? 0
        var sum = 0.0
        for l in logits { sum += exp(Double(l - top)) }
        return exp(Double(logits[token] - top)) / sum
    }

    /// One draw from a kept-token distribution with the sampler's generator.
    static func draw(_ distribution: [(token: Int, probability: Double)], _ sampler: inout Sampler) -> Int {
        var u = sampler.nextUniform()
        for c in distribution {
            u -= c.probability
            if u < 0 { return c.token }
        }
        return distribution.last { $0.probability > 0 }?.token ?? distribution.last?.token ?? 0
    }

    /// A draw from max(0, p − q) renormalized (speculative sampling after a rejection).
    static func drawResidual(_ p: [(token: Int, probability: Double)], minus q: [(token: Int, probability: Double)],
                             _ sampler: inout Sampler) -> Int {
        let qs = Dictionary(q.map { ($0.token, $0.probability) }, uniquingKeysWith: { a, _ in a })
        let residual = p.map { ($0.token, max(0, $0.probability - (qs[$0.token] ?? 0))) }
        let total = residual.reduce(0) { $0 + $1.1 }
        guard total > 0 else { return draw(p, &sampler) }
        return draw(residual.map { (token: $0.0, probability: $0.1 / total) }, &sampler)
    }
}
