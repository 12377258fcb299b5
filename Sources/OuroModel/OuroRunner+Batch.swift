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

    /// Batched decode steps (2...8 rows) through the compute-lean kernels (`LinearKernels.throughput`):
    /// the same results as one sequence at a time to float rounding, not bit for bit. `ouro serve`
    /// sets it; sampling for calibration keeps the default path.
    public let throughputKernels: Bool
    /// Weights packed for the lean kernels (`LeanPackedWeights`), read by the throughput products
    /// in place of the mapped Q4_0 / Q8_0 matrices; nil: those kernels pack per call.
    public let packedWeights: LeanPackedWeights?
    /// When set (profiling), each `run` adds where its wall time went.
    public var stepTimes: BatchedStepTimes?
    /// Per-task scratch of the batched attention job (`batchedAttention`), grown as needed.
    var attentionScratch = FloatBuffer(0)

    public init(runner: OuroRunner, throughputKernels: Bool = false, packedWeights: LeanPackedWeights? = nil) {
        self.runner = runner
        self.throughputKernels = throughputKernels
        self.packedWeights = throughputKernels ? packedWeights : nil
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
    /// loop step's normed state and gate logit for its last token and the logits its sequence's exit
    /// mode reads (`LoopOutputs` of one token; `logits(sequence.exit)` predicts the next token): the
    /// output head runs only at those steps (every step for `.weighted`, the exit step for
    /// threshold), and not at all for items whose `needsLogits` entry is false (a prompt chunk with
    /// more to come). Sequences must be distinct.
    public func run(_ items: [(sequence: BatchSequence, tokens: [Int])], needsLogits: [Bool]? = nil) throws -> [LoopOutputs] {
        guard !items.isEmpty else { return [] }
        let runStarted = stepTimes == nil ? 0 : BatchedStepTimes.now()
        defer { if stepTimes != nil { stepTimes!.total += BatchedStepTimes.now() - runStarted } }
        precondition(needsLogits == nil || needsLogits!.count == items.count, "needsLogits: one entry per item")
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
        if rows == nil || rows!.tokens < T {
            rows = try runner.makeActivations(tokens: T, context: 1)
        }
        let a = rows!
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

        a.kernels.throughput = throughputKernels
        a.kernels.leanPacked = packedWeights
        defer {
            a.kernels.throughput = false
            a.kernels.leanPacked = nil
        }
        let wants = needsLogits ?? Array(repeating: true, count: B)
        let S = config.loopCount
        var stepLogits = [[[Float]]](repeating: [], count: B)
        var stepHidden = [[[Float]]](repeating: [], count: B)
        var gateLogits = [[[Float]]](repeating: [], count: B)
        var exits = [ExitAccumulator](repeating: ExitAccumulator(), count: B)
        var exited = [Bool](repeating: false, count: B)
        var picked = [[Float]?](repeating: nil, count: B)
        for step in 0..<S {
            for layer in 0..<config.layerCount {
                batchedBlock(layer, slot: step * config.layerCount + layer, rows: T, ranges: ranges, a)
            }
            runner.rmsNorm(a.h.pointer, rows: T, weight: runner.outputNorm, into: a.h.pointer)
            // Each sequence's last row, gathered so the output head runs once for the batch.
            let states = a.normed.pointer
            for (i, range) in ranges.enumerated() {
                (states + i * H).update(from: a.h.pointer + (range.row + range.count - 1) * H, count: H)
            }
            let headStarted = stepTimes == nil ? 0 : BatchedStepTimes.now()
            defer { if stepTimes != nil { stepTimes!.head += BatchedStepTimes.now() - headStarted } }
            var heads: [Int] = []
            for i in 0..<B {
                let gate = runner.exitGateBias + cblas_sdot(Int32(H), states + i * H, 1, runner.exitGateWeight, 1)
                stepHidden[i].append(Array(UnsafeBufferPointer(start: states + i * H, count: H)))
                gateLogits[i].append([gate])
                guard wants[i] else { continue }
                switch items[i].sequence.exit {
                case .lastStep: if step == S - 1 { heads.append(i) }
                case let .step(k): if step == ((0..<S).contains(k) ? k : S - 1) { heads.append(i) }
                case .weighted: heads.append(i)
                case let .threshold(q):
                    // The exit step is decided as the steps run (the arithmetic of LoopOutputs.exitSteps).
                    if !exited[i] && exits[i].reaches(q, gateLogit: gate, step: step, steps: S) {
                        exited[i] = true
                        heads.append(i)
                    }
                }
            }
            // Compact the rows that need the head to the front (ascending, so no row is overwritten
            // before it is moved) and run it once for them.
            for (j, i) in heads.enumerated() where j != i {
                (states + j * H).update(from: states + i * H, count: H)
            }
            if !heads.isEmpty {
                a.kernels.linear(runner.weights.output, states, tokens: heads.count, into: a.logits.pointer)
            }
            var computed = [Int: Int]()
            for (j, i) in heads.enumerated() { computed[i] = j }
            for i in 0..<B {
                let row = computed[i].map { a.logits.array(from: $0 * V, count: V) }
                if case .threshold = items[i].sequence.exit {
                    if let row { picked[i] = row }
                    stepLogits[i].append([])
                } else {
                    stepLogits[i].append(row ?? [])
                }
            }
        }
        for range in ranges { range.sequence.cache.advance(by: range.count) }
        return (0..<B).map {
            var outputs = LoopOutputs(steps: S, tokens: 1, vocab: V, hidden: H,
                                      stepLogits: stepLogits[$0], stepHidden: stepHidden[$0], gateLogits: gateLogits[$0])
            if case .threshold = items[$0].sequence.exit, let logits = picked[$0] {
                outputs.precomputed = (items[$0].sequence.exit, logits)
            }
            return outputs
        }
    }

    /// `OuroRunner.block` over all rows, with attention per sequence over its own cache, all
    /// sequences in one pool job (`batchedAttention`).
    private func batchedBlock(_ layer: Int, slot: Int, rows T: Int,
                              ranges: [(row: Int, count: Int, sequence: BatchSequence)], _ a: Activations) {
        let r = runner, config = r.config
        let w = r.weights.layers[layer], norms = r.layerNorms[layer]
        let H = config.hiddenSize
        let kernels = a.kernels

        let profiling = stepTimes != nil
        var mark = profiling ? BatchedStepTimes.now() : 0
        // Adds the time since `mark` to one of `stepTimes`' parts (profiling only).
        func lap(_ part: WritableKeyPath<BatchedStepTimes, UInt64>) {
            guard profiling else { return }
            let now = BatchedStepTimes.now()
            stepTimes![keyPath: part] += now - mark
            mark = now
        }
        func other() { if profiling { mark = BatchedStepTimes.now() } }

        r.rmsNorm(a.h.pointer, rows: T, weight: norms.attn, into: a.normed.pointer)
        other()
        kernels.linear([w.q, w.k, w.v], a.normed.pointer, tokens: T, into: [a.q.pointer, a.k.pointer, a.v.pointer])
        lap(\.products)
        batchedAttention(slot: slot, rows: T, ranges: ranges, a)
        lap(\.attention)
        kernels.linear(w.o, a.attention.pointer, tokens: T, into: a.projected.pointer)
        lap(\.products)
        r.rmsNorm(a.projected.pointer, rows: T, weight: norms.postAttention, into: a.projected.pointer)
        Self.addResidual(a.projected.pointer, into: a.h.pointer, count: T * H)

        r.rmsNorm(a.h.pointer, rows: T, weight: norms.ffn, into: a.normed.pointer)
        other()
        // 2...8 rows: gate, up and silu in one lean pool job. One row (a lone stream, the baseline of
        // serve's 4-stream ratio) keeps the separate products + silu it had: with the one-token fused
        // unit (`gatedUnit`) instead, two loaded runs took more CPU per token, inside the run-to-run
        // spread of one-stream figures under load but not shown to be harmless.
        if !kernels.throughputGatedUnit(gate: w.gate, up: w.up, a.normed.pointer, tokens: T, into: a.gate.pointer, up: a.up.pointer) {
            kernels.linear([w.gate, w.up], a.normed.pointer, tokens: T, into: [a.gate.pointer, a.up.pointer])
            LinearKernels.siluGate(a.gate.pointer, a.up.pointer, count: T * config.intermediateSize)   // as OuroRunner.block
        }
        kernels.linear(w.down, a.gate.pointer, tokens: T, into: a.projected.pointer)
        lap(\.products)
        r.rmsNorm(a.projected.pointer, rows: T, weight: norms.postFFN, into: a.projected.pointer)
        Self.addResidual(a.projected.pointer, into: a.h.pointer, count: T * H)
    }

    /// h += x (the same sums as `cblas_saxpy` with alpha 1). Not OpenBLAS: a threaded build splits
    /// axpy over its own threads above 10,000 elements (5 rows here; `ouro serve` leaves OpenBLAS
    /// at its default thread count), whose spinning competes with the pool's threads for the cores;
    /// under load a 16-row prompt step spent ~45 % of its wall time outside products and attention.
    private static func addResidual(_ x: UnsafePointer<Float>, into h: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { h[i] += x[i] }
    }
}
