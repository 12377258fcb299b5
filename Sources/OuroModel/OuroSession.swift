/// A growing context: the tokens run so far and their keys and values for every (loop step, layer)
/// (or per layer, with shared K/V; see `KVCacheOptions`).
/// `append` runs only the new tokens at the next positions, so a conversation's earlier turns are never
/// re-run; `truncate` drops a tail (when a re-rendered prompt differs from what was run).
/// The cache grows in chunks as positions arrive (no copy), up to the options' context limit.
public final class OuroSession {
    public let runner: OuroRunner
    public let exit: ExitMode
    /// Every token whose K/V the cache holds, in order.
    public private(set) var tokens: [Int] = []
    let cache: KVCache
    /// Scratch for one-token calls (decoding), reused for every token.
    var single: Activations?
    /// Scratch for speculative verification passes (K+1 tokens), reused for every pass.
    var verification: Activations?
    let rowAttention = RowAttentionScratch()
    /// Longest run of tokens one forward call takes; longer appends go in chunks, so scratch memory
    /// (tokens x vocabulary logits among it) stays bounded whatever the prompt length.
    public let prefillChunk: Int

    /// `exit` nil: the model's default exit mode. `initialCapacity` positions are allocated at once
    /// (the rest as they arrive); `kv` chooses the cache's type, sharing and context limit.
    public init(runner: OuroRunner, exit: ExitMode? = nil, kv: KVCacheOptions = KVCacheOptions(),
                initialCapacity: Int = 256, prefillChunk: Int = 256) throws {
        let mode = exit ?? runner.defaultExitMode
        if case let .step(k) = mode, !(0..<runner.config.loopCount).contains(k) {
            throw ModelError.invalidRequest("exit step \(k) is outside 0..<\(runner.config.loopCount)")
        }
        self.runner = runner
        self.exit = mode
        self.prefillChunk = max(1, prefillChunk)
        cache = try KVCache(config: runner.config, options: kv)
        try cache.reserve(max(1, min(initialCapacity, cache.limit)))
    }

    /// The cache's type, sharing and context limit.
    public var kvOptions: KVCacheOptions { cache.options }

    /// Most positions this session can hold (--ctx, else the model's maximum).
    public var contextLimit: Int { cache.limit }

    /// Positions left before the context limit.
    public var remainingPositions: Int { cache.limit - tokens.count }

    /// Bytes the cache has allocated (whole chunks).
    public var cacheBytes: Int { cache.allocatedBytes }

    /// With a threshold exit mode, one-token appends stop looping at the exit step (`LoopDepth.earlyExit`:
    /// deeper steps are not computed, their K/V slots get the exit step's; under last sharing the kept
    /// K/V is the exit step's, under mean the mean with the deeper steps counted as the exit step).
    /// Prompt appends (more than one token) always run every step. Off: every step runs, the
    /// reference semantics.
    public var earlyExit = false
    /// One-token appends so far and the loop steps they ran (mean = decodeLoopSteps / decodedTokens).
    public private(set) var decodedTokens = 0
    public private(set) var decodeLoopSteps = 0

    /// Speculative appends so far: tokens drafted and drafts kept (acceptance rate = kept / drafted).
    public internal(set) var draftedTokens = 0
    public internal(set) var acceptedDrafts = 0

    /// Tokens a speculative append ran and kept (their K/V is in the cache).
    func recordAppended(_ ids: [Int]) { tokens += ids }

    /// Runs `newTokens` after the current context and returns the logits (chosen by `exit`) that
    /// predict the token after the last of them.
    public func append(_ newTokens: [Int]) throws -> [Float] {
        try appendRecording(newTokens, allPositions: false).logits(exit)
    }

    /// Runs `newTokens` like `append` and returns every loop step's outputs for each of them
    /// (`allPositions`) or for the last only.
    public func appendRecording(_ newTokens: [Int], allPositions: Bool) throws -> LoopOutputs {
        try runner.validate(newTokens)
        try cache.reserve(tokens.count + newTokens.count)
        if newTokens.count == 1 {
            let outputs = runner.run(newTokens[...], cache: cache, activations: try singleActivations(), lastPositionOnly: true,
                                     logits: allPositions ? .everyStep : .exit(exit), depth: earlyExit ? .earlyExit : .full)
            tokens += newTokens
            decodedTokens += 1
            decodeLoopSteps += outputs.executedSteps
            return outputs
        }
        let activations = try runner.makeActivations(tokens: min(newTokens.count, prefillChunk), context: cache.limit)
        var start = 0
        var recorded: LoopOutputs?
        while true {
            let chunk = newTokens[start..<min(start + prefillChunk, newTokens.count)]
            let outputs = runner.run(chunk, cache: cache, activations: activations, lastPositionOnly: !allPositions,
                                     logits: allPositions ? .everyStep : .exit(exit))
            recorded = recorded.map { $0.appending(outputs) } ?? outputs
            tokens += chunk
            start += chunk.count
            if start == newTokens.count { return allPositions ? recorded! : outputs }
        }
    }

    /// Keeps the first `count` tokens (and their K/V) and forgets the rest (the cache length is set
    /// back; nothing is copied).
    public func truncate(to count: Int) throws {
        guard count < tokens.count else { return }
        cache.truncate(to: max(count, 0))
        tokens.removeSubrange(max(count, 0)...)
    }

    /// Forgets everything (a new conversation); the cache memory is kept for reuse.
    public func reset() {
        cache.reset()
        tokens = []
    }

    /// Scratch for one-token calls (attention reads the cache's chunks, so it does not depend on the
    /// cache's size).
    func singleActivations() throws -> Activations {
        if single == nil { single = try runner.makeActivations(tokens: 1, context: cache.limit) }
        return single!
    }
}
