import Foundation

/// The parts of a self-speculative decode step, timed on this machine (`ouro bench --speculate`).
public struct SpeculationTiming: Sendable {
    /// One full-depth decoded token (every loop step, one head).
    public let plainTokenSeconds: Double
    /// One drafted token (the first D loop steps, one head).
    public let draftTokenSeconds: Double
    /// One verification pass of K+1 tokens (the last draft's D steps, then steps D... of all K+1
    /// tokens with the decode-identical kernels).
    public let verifySeconds: Double
    public let draftTokens: Int, draftSteps: Int

    /// Modeled speed-up over plain decoding when a fraction `acceptance` of the drafts is kept: each
    /// round yields 1 + acceptance·K tokens for K drafts and one verification pass.
    public func modeledSpeedup(acceptance: Double) -> Double {
        (1 + acceptance * Double(draftTokens)) * plainTokenSeconds
            / (Double(draftTokens) * draftTokenSeconds + verifySeconds)
    }
}

extension OuroRunner {
    /// After a prompt pass, times `rounds` of each part at the same context length: a full-depth token,
    /// K draft tokens of `draftSteps` steps, and a verification pass of K+1 tokens; the cache is cut back
    /// after each round so every round sees the same positions.
    public func timedSpeculationParts(prompt: [Int], draftTokens K: Int, draftSteps D: Int, rounds: Int,
                                      kv: KVCacheOptions = KVCacheOptions()) throws -> SpeculationTiming {
        try validate(prompt)
        guard K >= 1, (1..<config.loopCount).contains(D), rounds >= 1, prompt.count + K + 1 <= config.maxPositions else {
            throw ModelError.invalidRequest("speculation timing needs K >= 1, 1 <= D < \(config.loopCount), rounds >= 1 and room for K+1 tokens")
        }
        let capacity = prompt.count + K + 1
        let cache = try KVCache(config: config, options: kv)
        try cache.reserve(capacity)
        let prefill = try makeActivations(tokens: prompt.count, context: capacity)
        _ = run(prompt[...], cache: cache, activations: prefill, lastPositionOnly: true, logits: .exit(.lastStep))
        let single = try makeActivations(tokens: 1, context: capacity)
        let batch = try makeActivations(tokens: K + 1, context: capacity)
        let rowAttention = RowAttentionScratch()
        let n = cache.length
        let tokens = (0...K).map { (7 + $0 * 31) % config.vocabSize }
        func seconds(_ body: () -> Void) -> Double {
            let start = DispatchTime.now().uptimeNanoseconds
            body()
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
        var plain = 0.0, draft = 0.0, verify = 0.0
        for _ in 0..<rounds {
            plain += seconds { _ = run(tokens[0...0], cache: cache, activations: single, lastPositionOnly: true, logits: .exit(.lastStep)) }
            cache.truncate(to: n)
            var states: [Float] = []
            draft += seconds {
                for t in 0..<K {
                    states += run(tokens[t...t], cache: cache, activations: single, lastPositionOnly: true,
                                  logits: .exit(.step(D - 1)), depth: .firstSteps(D)).stepHidden[D - 1]
                }
            }
            // As OuroSession.appendSpeculating: the last draft's D steps, then steps D... of all K+1.
            verify += seconds {
                states += run(tokens[K...K], cache: cache, activations: single, lastPositionOnly: true,
                              logits: .exit(.step(D - 1)), depth: .firstSteps(D)).stepHidden[D - 1]
                cache.truncate(to: n)
                _ = run(tokens[...], cache: cache, activations: batch, lastPositionOnly: false, logits: .exit(.lastStep),
                        decodeIdentical: rowAttention, resume: (D, states))
            }
            cache.truncate(to: n)
        }
        let r = Double(rounds)
        return SpeculationTiming(plainTokenSeconds: plain / r, draftTokenSeconds: draft / r / Double(K), verifySeconds: verify / r,
                                 draftTokens: K, draftSteps: D)
    }
}
