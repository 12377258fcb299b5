import Foundation

/// Wall times of one prompt + decode run, for `ouro bench`.
public struct GenerationTiming: Sendable {
    public let promptTokens: Int
    /// Forward calls after the prompt (one new token each).
    public let decodedTokens: Int
    public let prefillSeconds: Double
    public let decodeSeconds: Double
    /// The process's CPU seconds (user + system) during the decode steps: with one thread, the decode's
    /// own compute, which time-slicing on a loaded machine does not stretch as it stretches wall time.
    public let decodeCPUSeconds: Double
    /// The same for the prompt pass.
    public let prefillCPUSeconds: Double
    public let generated: [Int]

    public var prefillTokensPerSecond: Double { Double(promptTokens) / prefillSeconds }
    public var decodeTokensPerSecond: Double { Double(decodedTokens) / decodeSeconds }
    public var decodeTokensPerCPUSecond: Double { Double(decodedTokens) / decodeCPUSeconds }
    public var prefillTokensPerCPUSecond: Double { Double(promptTokens) / prefillCPUSeconds }
}

/// CPU seconds this process has used so far (all threads).
private func processCPUSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

extension OuroRunner {
    /// Greedy cached generation that times the prompt pass and the decode steps
    /// separately: `newTokens` tokens come out, the first from the prompt pass, the rest from
    /// `newTokens - 1` single-token forward calls. `exit` picks the logits (and so how many head
    /// products a token costs: one, or every step's for `.weighted`); every loop step runs. `kv` is the
    /// cache's type and sharing.
    /// With `fillContext`, the cache is filled up to that many positions after the prompt by repeating
    /// the prompt's K/V (`KVCache.repeatPositions`, untimed), so decode runs at that context's cost.
    public func timedGeneration(prompt: [Int], newTokens: Int, exit: ExitMode = .lastStep, kv: KVCacheOptions = KVCacheOptions(),
                                fillContext: Int? = nil) throws -> GenerationTiming {
        try validate(prompt)
        let context = max(prompt.count, fillContext ?? 0)
        guard newTokens >= 1, context + newTokens <= config.maxPositions else {
            throw ModelError.invalidRequest("\(context) + \(newTokens) positions: need 1 or more new tokens within \(config.maxPositions)")
        }
        let total = context + newTokens
        let cache = try KVCache(config: config, options: kv)
        try cache.reserve(total)
        // Prompts go in chunks, as OuroSession runs them: scratch stays bounded at any length.
        let chunk = 256
        let prefill = try makeActivations(tokens: min(prompt.count, chunk), context: total)
        let single = try makeActivations(tokens: 1, context: total)
        let started = DispatchTime.now().uptimeNanoseconds
        let prefillCPUStarted = processCPUSeconds()
        var outputs: LoopOutputs!
        for first in stride(from: 0, to: prompt.count, by: chunk) {
            outputs = run(prompt[first..<min(first + chunk, prompt.count)], cache: cache, activations: prefill, lastPositionOnly: true,
                          logits: .exit(exit))
        }
        var generated = [Self.argmax(outputs.logits(exit))]
        var prefillEnded = DispatchTime.now().uptimeNanoseconds
        let prefillSeconds = Double(prefillEnded - started) / 1e9
        let prefillCPUSeconds = processCPUSeconds() - prefillCPUStarted
        if context > prompt.count {
            try cache.repeatPositions(upTo: context)
            prefillEnded = DispatchTime.now().uptimeNanoseconds
        }
        let decodeCPUStarted = processCPUSeconds()
        while generated.count < newTokens {
            outputs = run([generated.last!][...], cache: cache, activations: single, lastPositionOnly: true, logits: .exit(exit))
            generated.append(Self.argmax(outputs.logits(exit)))
        }
        let ended = DispatchTime.now().uptimeNanoseconds
        let decodeCPUSeconds = processCPUSeconds() - decodeCPUStarted
        return GenerationTiming(promptTokens: prompt.count, decodedTokens: newTokens - 1,
                                prefillSeconds: prefillSeconds,
                                decodeSeconds: Double(ended - prefillEnded) / 1e9, decodeCPUSeconds: decodeCPUSeconds, prefillCPUSeconds: prefillCPUSeconds, generated: generated)
    }
}

extension OuroWeights {
    /// Matrix bytes one decoded token reads in last-step mode: every block's seven projections once
    /// per loop step, the output head once (the gate of the other steps is one dot product). Norms,
    /// the exit gate and one embedding row are negligible and left out.
    public var matrixBytesPerToken: Int { matrixBytesPerToken(loopSteps: config.loopCount, headReads: 1) }

    /// Matrix bytes of one token that runs `loopSteps` steps and `headReads` output-head products
    /// (weighted exit: every step's head; a D-step draft: D steps, one head).
    public func matrixBytesPerToken(loopSteps: Int, headReads: Int) -> Int {
        let perStep = layers.reduce(0) { sum, l in
            sum + [l.q, l.k, l.v, l.o, l.gate, l.up, l.down].reduce(0) { $0 + $1.bytes.count }
        }
        return perStep * loopSteps + output.bytes.count * headReads
    }

    /// Multiply-adds per token in the matrices (the same weights as `matrixBytesPerToken`), times 2.
    public var matrixFlopsPerToken: Int {
        let perStep = layers.reduce(0) { sum, l in
            sum + [l.q, l.k, l.v, l.o, l.gate, l.up, l.down].reduce(0) { $0 + $1.rows * $1.columns }
        }
        return 2 * (perStep * config.loopCount + output.rows * output.columns)
    }

    /// Every matrix's bytes (what decode streams), for bandwidth probes.
    public var matrixRegions: [UnsafeRawBufferPointer] {
        layers.flatMap { l in [l.q, l.k, l.v, l.o, l.gate, l.up, l.down].map(\.bytes) } + [output.bytes]
    }
}
