import Foundation

/// Picks the next token from logits: greedy at temperature 0, else a draw from softmax(logits / T)
/// with a seeded generator (SplitMix64), so a seed always gives the same tokens.
public struct Sampler: Sendable {
    public let temperature: Float
    private var state: UInt64

    public init(temperature: Float, seed: UInt64) {
        self.temperature = temperature
        state = seed
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
        guard temperature > 0, !logits.isEmpty else { return OuroRunner.argmax(logits) }
        let scaled = logits.map { Double($0) / Double(temperature) }
        let top = scaled.max() ?? 0
        let weights = scaled.map { exp($0 - top) }
        let total = weights.reduce(0, +)
        var u = nextUniform() * total
        for (i, w) in weights.enumerated() {
            u -= w
            if u < 0 { return i }
        }
        return weights.lastIndex { $0 > 0 } ?? 0
    }
}

extension OuroRunner {
    /// Cached generation of `maxNewTokens` tokens after `prompt`, each drawn by `sampler` from the
    /// logits `exit` picks (nil: the default exit mode). Stops early only at a token in `stopTokens`.
    public func sample(prompt: [Int], maxNewTokens: Int, sampler: Sampler, exit: ExitMode? = nil,
                       stopTokens: Set<Int> = []) throws -> [Int] {
        try validate(prompt)
        guard maxNewTokens >= 0 else { throw ModelError.invalidRequest("maxNewTokens is \(maxNewTokens); must be >= 0") }
        let (total, overflow) = prompt.count.addingReportingOverflow(maxNewTokens)
        guard !overflow, total <= config.maxPositions else {
            throw ModelError.invalidRequest("\(prompt.count) + \(maxNewTokens) positions exceed the model's \(config.maxPositions)")
        }
        guard maxNewTokens > 0 else { return [] }
        let mode = exit ?? defaultExitMode
        var sampler = sampler
        let cache = try KVCache(config: config, capacity: total)
        let prefill = try Activations(config: config, tokens: prompt.count, context: total)
        var outputs = run(prompt[...], cache: cache, activations: prefill, lastPositionOnly: true)
        let single = try Activations(config: config, tokens: 1, context: total)
        var generated: [Int] = []
        while true {
            let next = sampler.next(outputs.logits(mode))
            generated.append(next)
            if generated.count == maxNewTokens || stopTokens.contains(next) { break }
            outputs = run([next][...], cache: cache, activations: single, lastPositionOnly: true)
        }
        return generated
    }
}
