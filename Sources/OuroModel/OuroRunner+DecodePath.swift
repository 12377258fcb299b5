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
