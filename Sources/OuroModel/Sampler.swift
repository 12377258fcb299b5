import Foundation

/// How the next token is chosen from logits. The defaults are greedy decoding.
public struct SamplingOptions: Sendable, Equatable {
    /// 0 is greedy (argmax); otherwise logits are divided by it before the draw.
    public var temperature: Float = 0
    /// Keep only the k most likely tokens (ties with the k-th kept); 0 is off.
    public var topK: Int = 0
    /// Keep the smallest set of most likely tokens whose probability reaches p; 1 is off.
    public var topP: Float = 1
    /// Drop tokens less likely than minP × the most likely one's probability; 0 is off.
    public var minP: Float = 0
    /// Tokens already in the context get their logit divided by this (multiplied when negative); 1 is off.
    public var repeatPenalty: Float = 1
    /// The draw's seed: the same seed, options and model give the same tokens.
    public var seed: UInt64 = 0

    public init(temperature: Float = 0, topK: Int = 0, topP: Float = 1, minP: Float = 0, repeatPenalty: Float = 1, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repeatPenalty = repeatPenalty
        self.seed = seed
    }

    /// Why the options are unusable, naming the option, or nil.
    public var problem: String? {
        if !(temperature >= 0 && temperature.isFinite) { return "temperature must be 0 or more" }
        if topK < 0 { return "top-k must be 0 (off) or more" }
        if !(topP > 0 && topP <= 1) { return "top-p must be in (0, 1]" }
        if !(minP >= 0 && minP <= 1) { return "min-p must be in [0, 1]" }
        if !(repeatPenalty > 0 && repeatPenalty.isFinite) { return "repeat-penalty must be more than 0" }
        return nil
    }
}

/// Picks the next token from logits in the order Hugging Face transformers applies its processors:
/// repetition penalty, then (when sampling) temperature, top-k, top-p, min-p, then a draw from the
/// softmax of what is left with a seeded generator (SplitMix64). Greedy decoding (temperature 0) is
/// the argmax of the penalized logits. The draw walks candidates in token-id order, so plain
/// temperature sampling gives the same tokens as before these options existed.
public struct Sampler: Sendable {
    public let options: SamplingOptions
    public var temperature: Float { options.temperature }
    private var state: UInt64

    public init(temperature: Float, seed: UInt64) {
        self.init(SamplingOptions(temperature: temperature, seed: seed))
    }

    public init(_ options: SamplingOptions) {
        self.options = options
        state = options.seed
    }

    /// A uniform double in [0, 1).
    mutating func nextUniform() -> Double {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Double(z >> 11) / Double(1 << 53)
    }

    public mutating func next(_ logits: [Float]) -> Int {
        next(logits, context: [])
    }

    /// The next token; `context` holds the tokens the repetition penalty applies to (prompt and output).
    public mutating func next(_ logits: [Float], context: some Sequence<Int>) -> Int {
        guard !logits.isEmpty else { return 0 }
        let penalized = penalize(logits, context)
        guard options.temperature > 0 else { return OuroRunner.argmax(penalized) }
        let candidates = distribution(penalized)
        var u = nextUniform() * candidates.reduce(0) { $0 + $1.weight }
        for c in candidates {
            u -= c.weight
            if u < 0 { return c.token }
        }
        return candidates.last { $0.weight > 0 }?.token ?? OuroRunner.argmax(penalized)
    }

    /// The tokens a draw can pick and their probabilities (summing to 1), in token-id order, after
    /// every option but the draw; greedy decoding gives the argmax alone.
    public func probabilities(_ logits: [Float], context: some Sequence<Int> = [Int]()) -> [(token: Int, probability: Double)] {
        let penalized = penalize(logits, context)
        guard options.temperature > 0 else { return logits.isEmpty ? [] : [(OuroRunner.argmax(penalized), 1)] }
        let candidates = distribution(penalized)
        let total = candidates.reduce(0) { $0 + $1.weight }
        return candidates.map { ($0.token, $0.weight / total) }
    }

    /// transformers' RepetitionPenaltyLogitsProcessor: each distinct context token's logit is divided
    /// by the penalty when positive, multiplied when negative.
    private func penalize(_ logits: [Float], _ context: some Sequence<Int>) -> [Float] {
        guard options.repeatPenalty != 1 else { return logits }
        var out = logits
        for token in Set(context) where out.indices.contains(token) {
            let x = logits[token]
            out[token] = x < 0 ? x * options.repeatPenalty : x / options.repeatPenalty
        }
        return out
    }

    /// Unnormalized weights exp(logit/T − max) of the kept tokens, in token-id order.
    private func distribution(_ logits: [Float]) -> [(token: Int, weight: Double)] {
        let scaled = logits.map { Double($0) / Double(options.temperature) }
        let top = scaled.max() ?? 0
        var kept = Array(scaled.indices)
        // Descending by logit, ties by id: the order the cutoffs below count in.
        var ranked: [Int] { kept.sorted { scaled[$0] != scaled[$1] ? scaled[$0] > scaled[$1] : $0 < $1 } }
        if options.topK > 0 && options.topK < kept.count {
            // TopKLogitsWarper: scores below the k-th largest go; ties with it stay.
            let threshold = scaled[ranked[options.topK - 1]]
            kept = kept.filter { scaled[$0] >= threshold }
        }
        if options.topP < 1 {
            // TopPLogitsWarper: keep a token while the mass ranked above it is below p (at least one).
            let order = ranked
            let weights = order.map { exp(scaled[$0] - top) }
            let total = weights.reduce(0, +)
            var above = 0.0, keep = Set<Int>()
            for (token, w) in zip(order, weights) {
                if above / total >= Double(options.topP) && !keep.isEmpty { break }
                keep.insert(token)
                above += w
            }
            kept = kept.filter { keep.contains($0) }
        }
        if options.minP > 0 {
            // MinPLogitsWarper: probability below minP × the largest goes (the largest always stays).
            let best = kept.map { scaled[$0] }.max() ?? top
            let floor = Double(options.minP)
            kept = kept.filter { exp(scaled[$0] - best) >= floor }
        }
        return kept.map { ($0, exp(scaled[$0] - top)) }
    }
}

extension OuroRunner {
    /// Cached generation of `maxNewTokens` tokens after `prompt`, each drawn by `sampler` from the
    /// logits `exit` picks (nil: the default exit mode). Stops early only at a token in `stopTokens`.
    public func sample(prompt: [Int], maxNewTokens: Int, sampler: Sampler, exit: ExitMode? = nil,
                       stopTokens: Set<Int> = [], kv: KVCacheOptions = KVCacheOptions()) throws -> [Int] {
        try validate(prompt)
        guard maxNewTokens >= 0 else { throw ModelError.invalidRequest("maxNewTokens is \(maxNewTokens); must be >= 0") }
        let (total, overflow) = prompt.count.addingReportingOverflow(maxNewTokens)
        guard !overflow, total <= config.maxPositions else {
            throw ModelError.invalidRequest("\(prompt.count) + \(maxNewTokens) positions exceed the model's \(config.maxPositions)")
        }
        guard maxNewTokens > 0 else { return [] }
        let mode = exit ?? defaultExitMode
        var sampler = sampler
        let cache = try KVCache(config: config, options: kv)
        try cache.reserve(total)
        let prefill = try Activations(config: config, tokens: prompt.count, context: total)
        var outputs = run(prompt[...], cache: cache, activations: prefill, lastPositionOnly: true, logits: .exit(mode))
        let single = try Activations(config: config, tokens: 1, context: total)
        var generated: [Int] = []
        while true {
            let next = sampler.next(outputs.logits(mode), context: prompt + generated)
            generated.append(next)
            if generated.count == maxNewTokens || stopTokens.contains(next) { break }
            outputs = run([next][...], cache: cache, activations: single, lastPositionOnly: true, logits: .exit(mode))
        }
        return generated
    }
}
