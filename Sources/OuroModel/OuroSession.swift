/// A growing context: the tokens run so far and their keys and values for every (loop step, layer).
/// `append` runs only the new tokens at the next positions, so a conversation's earlier turns are never
/// re-run; `truncate` drops a tail (when a re-rendered prompt differs from what was run).
/// The cache starts small and doubles as needed, up to the model's maximum positions.
public final class OuroSession {
    public let runner: OuroRunner
    public let exit: ExitMode
    /// Every token whose K/V the cache holds, in order.
    public private(set) var tokens: [Int] = []
    var cache: KVCache
    /// Scratch for one-token calls (decoding), reused while the cache capacity stays the same.
    var single: Activations?
    /// Longest run of tokens one forward call takes; longer appends go in chunks, so scratch memory
    /// (tokens x vocabulary logits among it) stays bounded whatever the prompt length.
    public let prefillChunk: Int

    /// `exit` nil: the model's default exit mode.
    public init(runner: OuroRunner, exit: ExitMode? = nil, initialCapacity: Int = 256, prefillChunk: Int = 256) throws {
        let mode = exit ?? runner.defaultExitMode
        if case let .step(k) = mode, !(0..<runner.config.loopCount).contains(k) {
            throw ModelError.invalidRequest("exit step \(k) is outside 0..<\(runner.config.loopCount)")
        }
        self.runner = runner
        self.exit = mode
        self.prefillChunk = max(1, prefillChunk)
        cache = try KVCache(config: runner.config, capacity: max(1, min(initialCapacity, runner.config.maxPositions)))
    }

    /// With a threshold exit mode, one-token appends stop looping at the exit step (`LoopDepth.earlyExit`:
    /// deeper steps are not computed, their K/V slots get the exit step's). Prompt appends (more than one
    /// token) always run every step. Off: every step runs, the reference semantics.
    public var earlyExit = false
    /// One-token appends so far and the loop steps they ran (mean = decodeLoopSteps / decodedTokens).
    public private(set) var decodedTokens = 0
    public private(set) var decodeLoopSteps = 0

    /// Speculative appends so far: tokens drafted and drafts kept (acceptance rate = kept / drafted).
    public internal(set) var draftedTokens = 0
    public internal(set) var acceptedDrafts = 0

    /// Tokens a speculative append ran and kept (their K/V is in the cache).
    func recordAppended(_ ids: [Int]) { tokens += ids }

    /// Positions left before the model's maximum.
    public var remainingPositions: Int { runner.config.maxPositions - tokens.count }

    /// Runs `newTokens` after the current context and returns the logits (chosen by `exit`) that
    /// predict the token after the last of them.
    public func append(_ newTokens: [Int]) throws -> [Float] {
        try runner.validate(newTokens)
        guard newTokens.count <= remainingPositions else {
            throw ModelError.invalidRequest("\(tokens.count) + \(newTokens.count) positions exceed the model's \(runner.config.maxPositions)")
        }
        try reserve(tokens.count + newTokens.count)
        if newTokens.count == 1 {
            let outputs = runner.run(newTokens[...], cache: cache, activations: try singleActivations(), lastPositionOnly: true,
                                     logits: .exit(exit), depth: earlyExit ? .earlyExit : .full)
            tokens += newTokens
            decodedTokens += 1
            decodeLoopSteps += outputs.executedSteps
            return outputs.logits(exit)
        }
        let activations = try runner.makeActivations(tokens: min(newTokens.count, prefillChunk), context: cache.capacity)
        var start = 0
        while true {
            let chunk = newTokens[start..<min(start + prefillChunk, newTokens.count)]
            let outputs = runner.run(chunk, cache: cache, activations: activations, lastPositionOnly: true, logits: .exit(exit))
            tokens += chunk
            start += chunk.count
            if start == newTokens.count { return outputs.logits(exit) }
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

    /// Scratch for one-token calls at the current cache capacity.
    func singleActivations() throws -> Activations {
        if single == nil || single!.context != cache.capacity {
            single = try runner.makeActivations(tokens: 1, context: cache.capacity)
        }
        return single!
    }

    func reserve(_ needed: Int) throws {
        guard needed > cache.capacity else { return }
        var capacity = cache.capacity
        while capacity < needed { capacity = min(capacity * 2, runner.config.maxPositions) }
        cache = try cache.copy(capacity: capacity, keeping: tokens.count, config: runner.config)
        single = nil
    }
}

extension KVCache {
    /// A cache of `capacity` positions holding this one's first `keeping` positions of every slot.
    func copy(capacity newCapacity: Int, keeping: Int, config: OuroConfiguration) throws -> KVCache {
        let copy = try KVCache(config: config, capacity: newCapacity)
        let kept = min(keeping, length)
        for slot in 0..<slots where kept > 0 {
            copy.key(slot, 0).update(from: key(slot, 0), count: kept * width)
            copy.value(slot, 0).update(from: value(slot, 0), count: kept * width)
        }
        copy.advance(by: kept)
        return copy
    }
}
