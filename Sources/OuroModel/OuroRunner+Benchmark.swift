import Foundation

/// Wall times of one prompt + decode run, for `ouro bench`.
public struct GenerationTiming: Sendable {
    public let promptTokens: Int
    /// Forward calls after the prompt (one new token each).
    public let decodedTokens: Int
    public let prefillSeconds: Double
    public let decodeSeconds: Double
    public let generated: [Int]

    public var prefillTokensPerSecond: Double { Double(promptTokens) / prefillSeconds }
    public var decodeTokensPerSecond: Double { Double(decodedTokens) / decodeSeconds }
}

extension OuroRunner {
    /// Greedy cached generation that times the prompt pass and the decode steps separately:
    /// `newTokens` tokens come out, the first from the prompt pass, the rest from `newTokens - 1`
    /// single-token forward calls. `exit` picks the logits (and so how many head products a token
    /// costs: one, or every step's for `.weighted`); every loop step runs.
    public func timedGeneration(prompt: [Int], newTokens: Int, exit: ExitMode = .lastStep) throws -> GenerationTiming {
        try validate(prompt)
        guard newTokens >= 1, prompt.count + newTokens <= config.maxPositions else {
            throw ModelError.invalidRequest("\(prompt.count) + \(newTokens) positions: need 1 or more new tokens within \(config.maxPositions)")
        }
        let total = prompt.count + newTokens
        let cache = try KVCache(config: config, capacity: total)
        let prefill = try makeActivations(tokens: prompt.count, context: total)
        let single = try makeActivations(tokens: 1, context: total)
        let started = DispatchTime.now().uptimeNanoseconds
        var outputs = run(prompt[...], cache: cache, activations: prefill, lastPositionOnly: true, logits: .exit(exit))
        var generated = [Self.argmax(outputs.logits(exit))]
        let prefillEnded = DispatchTime.now().uptimeNanoseconds
        while generated.count < newTokens {
            outputs = run([generated.last!][...], cache: cache, activations: single, lastPositionOnly: true, logits: .exit(exit))
            generated.append(Self.argmax(outputs.logits(exit)))
        }
        let ended = DispatchTime.now().uptimeNanoseconds
        return GenerationTiming(promptTokens: prompt.count, decodedTokens: newTokens - 1,
                                prefillSeconds: Double(prefillEnded - started) / 1e9,
                                decodeSeconds: Double(ended - prefillEnded) / 1e9, generated: generated)
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
