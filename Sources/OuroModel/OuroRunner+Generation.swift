extension OuroRunner {
    /// Greedy decoding of `maxNewTokens` new tokens (prompt excluded). Every loop step runs for every
    /// token; `exit` picks which logits choose the next token (nil: upstream's default, see
    /// `defaultExitMode`). With `cached`, the prompt is processed once and each new token attends to
    /// the stored K/V of every (step, layer); without, the whole sequence is re-run for each token.
    /// Generation stops early only at a token in `stopTokens`. `kv` is the cache's type and sharing.
    public func generate(prompt: [Int], maxNewTokens: Int, cached: Bool = true, exit: ExitMode? = nil,
                         stopTokens: Set<Int> = [], kv: KVCacheOptions = KVCacheOptions()) throws -> [Int] {
        try validate(prompt)
        guard maxNewTokens >= 0 else { throw ModelError.invalidRequest("maxNewTokens is \(maxNewTokens); must be >= 0") }
        let mode = exit ?? defaultExitMode
        if case let .step(k) = mode, !(0..<config.loopCount).contains(k) {
            throw ModelError.invalidRequest("exit step \(k) is outside 0..<\(config.loopCount)")
        }
        let (total, overflow) = prompt.count.addingReportingOverflow(maxNewTokens)
        guard !overflow, total <= config.maxPositions else {
            throw ModelError.invalidRequest("\(prompt.count) + \(maxNewTokens) positions exceed the model's \(config.maxPositions)")
        }
        guard maxNewTokens > 0 else { return [] }

        var sequence = prompt
        var generated: [Int] = []
        if cached {
            let cache = try KVCache(config: config, options: kv)
            try cache.reserve(total)
            let prefill = try makeActivations(tokens: prompt.count, context: total)
            var outputs = run(prompt[...], cache: cache, activations: prefill, lastPositionOnly: true, logits: .exit(mode))
            let single = try makeActivations(tokens: 1, context: total)
            while true {
                let next = Self.argmax(outputs.logits(mode))
                generated.append(next)
                if generated.count == maxNewTokens || stopTokens.contains(next) { break }
                outputs = run([next][...], cache: cache, activations: single, lastPositionOnly: true, logits: .exit(mode))
            }
        } else {
            while true {
                let cache = try KVCache(config: config, options: KVCacheOptions(type: .f32, sharing: .last))
                try cache.reserve(sequence.count)
                let activations = try makeActivations(tokens: sequence.count, context: sequence.count)
                let outputs = run(sequence[...], cache: cache, activations: activations, lastPositionOnly: true, logits: .exit(mode))
                let next = Self.argmax(outputs.logits(mode))
                generated.append(next)
                sequence.append(next)
                if generated.count == maxNewTokens || stopTokens.contains(next) { break }
            }
        }
        return generated
    }

    /// Index of the largest value; the first on ties, as torch.argmax.
    static func argmax(_ values: [Float]) -> Int {
        var best = 0
        for i in values.indices where values[i] > values[best] { best = i }
        return best
    }
}
