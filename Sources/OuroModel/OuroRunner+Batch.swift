import COpenBLAS
import Foundation
import Quantization

/// One sequence of a continuous batch: its own KV cache (grown in chunks as it needs, up to
/// `maxPositions`) and the number of positions run so far. Only `BatchedForward.run` touches it.
public final class BatchSequence: @unchecked Sendable {
    public let exit: ExitMode
    /// Positions whose K/V the cache holds.
    public var length: Int { cache.length }
    /// The most positions this sequence may reach (prompt + answer, capped by the server's context).
    public let maxPositions: Int
    var cache: KVCache

    init(config: OuroConfiguration, exit: ExitMode, kv: KVCacheOptions, maxPositions: Int) throws {
        self.exit = exit
        self.maxPositions = maxPositions
        var options = kv
        options.contextLimit = min(kv.contextLimit ?? maxPositions, maxPositions)
        cache = try KVCache(config: config, options: options)
    }

    func reserve(_ needed: Int, config: OuroConfiguration) throws {
        try cache.reserve(needed)
    }
}

/// Runs the new tokens of several sequences in one forward pass: the linear layers (and the output
/// head) see every sequence's rows at once, so the weights are read once per step for the whole
/// batch (the prefill GEMM path); attention runs per sequence over its own rows and KV cache.
/// A sequence may bring one token (decoding) or a chunk of its prompt (prefill) in the same pass.
/// Not thread-safe: one caller (the scheduler's thread) at a time.
public final class BatchedForward: @unchecked Sendable {
    public let runner: OuroRunner
    /// Batch-wide scratch [total rows].
    private var rows: Activations?
    /// One sequence's attention scratch (q/k/v/cos/sin/scores/attention), reused sequence by sequence.
    private var single: Activations?

    public init(runner: OuroRunner) {
        self.runner = runner
    }

    /// A new empty sequence; `maxPositions` nil: the model's maximum.
    public func makeSequence(exit: ExitMode? = nil, kv: KVCacheOptions = KVCacheOptions(), maxPositions: Int? = nil) throws -> BatchSequence {
        let config = runner.config
        let mode = exit ?? runner.defaultExitMode
        if case let .step(k) = mode, !(0..<config.loopCount).contains(k) {
            throw ModelError.invalidRequest("exit step \(k) is outside 0..<\(config.loopCount)")
        }
        return try BatchSequence(config: config, exit: mode, kv: kv,
                                 maxPositions: min(maxPositions ?? config.maxPositions, config.maxPositions))
    }

    /// Runs each item's tokens after its sequence's context and returns, per item in order, every
    /// loop step's logits, normed state and gate logit for its last token (`LoopOutputs` of one
    /// token; `logits(sequence.exit)` predicts the next token). Sequences must be distinct.
    public func run(_ items: [(sequence: BatchSequence, tokens: [Int])]) throws -> [LoopOutputs] {
        guard !items.isEmpty else { return [] }
        let config = runner.config
        guard Set(items.map { ObjectIdentifier($0.sequence) }).count == items.count else {
            throw ModelError.invalidRequest("a sequence appears twice in one batch")
        }
        for item in items {
            try runner.validate(item.tokens)
            guard item.sequence.length + item.tokens.count <= item.sequence.maxPositions else {
                throw ModelError.invalidRequest("\(item.sequence.length) + \(item.tokens.count) positions exceed the sequence's \(item.sequence.maxPositions)")
            }
            try item.sequence.reserve(item.sequence.length + item.tokens.count, config: config)
        }
        let T = items.reduce(0) { $0 + $1.tokens.count }
        let longest = items.map(\.tokens.count).max()!
        let context = items.map { $0.sequence.cache.capacity }.max()!
        if rows == nil || rows!.tokens < T {
            rows = try runner.makeActivations(tokens: T, context: 1)
        }
        if single == nil || single!.tokens < longest || single!.context < context {
            single = try runner.makeActivations(tokens: max(longest, single?.tokens ?? 0), context: max(context, single?.context ?? 0))
        }
        let a = rows!, s = single!
        let H = config.hiddenSize, V = config.vocabSize, B = items.count, half = config.headDim / 2

        // Row ranges, embeddings and each sequence's RoPE tables at its own positions.
        var firstRow: [Int] = []
        var row = 0
        let embedding = runner.weights.tokenEmbedding
        for item in items {
            firstRow.append(row)
            for (t, token) in item.tokens.enumerated() {
                dequantizeRow(embedding.type, embedding.row(token), count: H, into: a.h.pointer + (row + t) * H)
            }
            runner.rope.tables(start: item.sequence.length, count: item.tokens.count,
                               cos: a.cos.pointer + row * half, sin: a.sin.pointer + row * half)
            row += item.tokens.count
        }
        let ranges = items.indices.map { (row: firstRow[$0], count: items[$0].tokens.count, sequence: items[$0].sequence) }

        var stepLogits = [[[Float]]](repeating: [], count: B)
        var stepHidden = [[[Float]]](repeating: [], count: B)
        var gateLogits = [[[Float]]](repeating: [], count: B)
        for step in 0..<config.loopCount {
            for layer in 0..<config.layerCount {
                batchedBlock(layer, slot: step * config.layerCount + layer, rows: T, ranges: ranges, a, s)
            }
            runner.rmsNorm(a.h.pointer, rows: T, weight: runner.outputNorm, into: a.h.pointer)
            // Each sequence's last row, gathered so the output head runs once for the batch.
            let states = a.normed.pointer
            for (i, range) in ranges.enumerated() {
                (states + i * H).update(from: a.h.pointer + (range.row + range.count - 1) * H, count: H)
            }
            a.kernels.linear(runner.weights.output, states, tokens: B, into: a.logits.pointer)
            for i in 0..<B {
                stepHidden[i].append(Array(UnsafeBufferPointer(start: states + i * H, count: H)))
                stepLogits[i].append(a.logits.array(from: i * V, count: V))
                gateLogits[i].append([runner.exitGateBias + cblas_sdot(Int32(H), states + i * H, 1, runner.exitGateWeight, 1)])
            }
        }
        for range in ranges { range.sequence.cache.advance(by: range.count) }
        return (0..<B).map {
            LoopOutputs(steps: config.loopCount, tokens: 1, vocab: V, hidden: H,
                        stepLogits: stepLogits[$0], stepHidden: stepHidden[$0], gateLogits: gateLogits[$0])
        }
    }

    /// `OuroRunner.block` over all rows, with attention per sequence: its rows of q/k/v/cos/sin are
    /// copied into the one-sequence scratch `s`, attended over its own cache, and copied back.
    private func batchedBlock(_ layer: Int, slot: Int, rows T: Int,
                              ranges: [(row: Int, count: Int, sequence: BatchSequence)], _ a: Activations, _ s: Activations) {
        let r = runner, config = r.config
        let w = r.weights.layers[layer], norms = r.layerNorms[layer]
        let H = config.hiddenSize, I = config.intermediateSize
        let qWidth = config.headCount * config.headDim, kvWidth = config.kvHeadCount * config.headDim, half = config.headDim / 2
        let kernels = a.kernels

        r.rmsNorm(a.h.pointer, rows: T, weight: norms.attn, into: a.normed.pointer)
        kernels.linear([w.q, w.k, w.v], a.normed.pointer, tokens: T, into: [a.q.pointer, a.k.pointer, a.v.pointer])
        for range in ranges {
            let n = range.count, first = range.row
            s.q.pointer.update(from: a.q.pointer + first * qWidth, count: n * qWidth)
            s.k.pointer.update(from: a.k.pointer + first * kvWidth, count: n * kvWidth)
            s.v.pointer.update(from: a.v.pointer + first * kvWidth, count: n * kvWidth)
            s.cos.pointer.update(from: a.cos.pointer + first * half, count: n * half)
            s.sin.pointer.update(from: a.sin.pointer + first * half, count: n * half)
            r.attention(slot: slot, tokens: n, start: range.sequence.cache.length, cache: range.sequence.cache, s)
            (a.attention.pointer + first * qWidth).update(from: s.attention.pointer, count: n * qWidth)
        }
        kernels.linear(w.o, a.attention.pointer, tokens: T, into: a.projected.pointer)
        r.rmsNorm(a.projected.pointer, rows: T, weight: norms.postAttention, into: a.projected.pointer)
        cblas_saxpy(Int32(T * H), 1, a.projected.pointer, 1, a.h.pointer, 1)

        r.rmsNorm(a.h.pointer, rows: T, weight: norms.ffn, into: a.normed.pointer)
        kernels.linear([w.gate, w.up], a.normed.pointer, tokens: T, into: [a.gate.pointer, a.up.pointer])
        let g = a.gate.pointer, u = a.up.pointer
        for i in 0..<T * I {
            let x = g[i]
            g[i] = (x / (1 + expf(-x))) * u[i]      // silu(gate) * up, as OuroRunner.block
        }
        kernels.linear(w.down, a.gate.pointer, tokens: T, into: a.projected.pointer)
        r.rmsNorm(a.projected.pointer, rows: T, weight: norms.postFFN, into: a.projected.pointer)
        cblas_saxpy(Int32(T * H), 1, a.projected.pointer, 1, a.h.pointer, 1)
    }
}
