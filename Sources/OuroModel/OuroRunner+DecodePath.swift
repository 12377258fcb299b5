extension OuroRunner {
    /// Every position's outputs computed the way generation computes them: the first `prefill`
    /// tokens in one call (chunked as a session does), then each later token alone through the KV
    /// cache. With an exact cache (f32, full sharing) this equals `forward(tokens:)` up to float
    /// summation order; the difference measures what the cache type and sharing cost.
    public func decodePath(tokens: [Int], prefill: Int, kv: KVCacheOptions) throws -> LoopOutputs {
        try validate(tokens)
        let first = min(max(prefill, 1), tokens.count)
        let session = try OuroSession(runner: self, exit: .lastStep, kv: kv, initialCapacity: tokens.count)
        var outputs = try session.appendRecording(Array(tokens[..<first]), allPositions: true)
        for token in tokens[first...] {
            outputs.append(try session.appendRecording([token], allPositions: true))
        }
        return outputs
    }
}

/// The decode path with real early exit (`OuroSession.earlyExit`, threshold exit mode): what
/// generation computes when `--exit threshold:Q` stops each token at its exit step.
public struct EarlyExitPath: Sendable {
    /// [T*V]: each position's logits at its exit step (the prefill positions ran every step and
    /// picked theirs from all of them, as the threshold mode does at full depth).
    public var logits: [Float]
    /// [T]: loop steps each position ran (the loop count for the prefill positions).
    public var loopSteps: [Int]
}

extension OuroRunner {
    /// Feeds `tokens` as `decodePath` does, but the one-at-a-time positions stop looping at the first
    /// step whose cumulative exit probability reaches `threshold` (the deeper steps are not computed;
    /// their K/V is the exit step's). A threshold no position reaches before the last step gives the
    /// full-depth threshold logits; 0 stops every decoded position after the first step.
    public func earlyExitDecodePath(tokens: [Int], prefill: Int, kv: KVCacheOptions, threshold: Float) throws -> EarlyExitPath {
        try validate(tokens)
        let first = min(max(prefill, 1), tokens.count)
        let mode = ExitMode.threshold(threshold)
        let session = try OuroSession(runner: self, exit: mode, kv: kv, initialCapacity: tokens.count)
        session.earlyExit = true
        // Recording every step's logits runs every step: the prefill (even of one token) is a prompt.
        let prompt = try session.appendRecording(Array(tokens[..<first]), allPositions: true)
        var logits = prompt.logits(mode)
        var loopSteps = [Int](repeating: prompt.executedSteps, count: first)
        logits.reserveCapacity(tokens.count * config.vocabSize)
        for token in tokens[first...] {
            let outputs = try session.appendRecording([token], allPositions: false)
            logits += outputs.logits(mode)
            loopSteps.append(outputs.executedSteps)
        }
        return EarlyExitPath(logits: logits, loopSteps: loopSteps)
    }
}
