import CKernels
import COpenBLAS
import Foundation
import Quantization

// Shape legend (row-major, outermost first):
//   T  tokens in this call          H  hidden size           I  intermediate size
//   V  vocabulary                   S  loop steps            L  layers (shared by every step)
//   nh attention heads              nkv key/value heads      D  head dim
//   P  positions attended (cached + new)
// h [T,H] is the residual stream; q [T,nh*D]; k, v [T,nkv*D]; scores [T,P] per head;
// gate, up [T,I]; step logits [T,V]; KV cache slot (step, layer) holds K, V [P,nkv*D].

/// Runs an Ouro model on the CPU in float32: the looped forward pass, exit modes, KV cache and
/// greedy generation.
public final class OuroRunner: @unchecked Sendable {
    public let weights: OuroWeights
    public let config: OuroConfiguration
    let rope: RotaryEmbedding
    /// Norm and exit-gate vectors expanded to f32 once (they are tiny).
    let layerNorms: [(attn: [Float], postAttention: [Float], ffn: [Float], postFFN: [Float])]
    let outputNorm: [Float]
    let exitGateWeight: [Float]
    let exitGateBias: Float
    let eps: Float
    /// Threads each linear layer may use (the calling thread included).
    public let threads: Int
    /// Prompt (T > 1) products on q8_0/q4_0 through the integer kernels (true) or through
    /// dequantized f32 tiles and sgemm (false).
    public let integerPrefill: Bool
    /// Sees the input rows of every linear layer (imatrix collection); nil costs nothing.
    public var activationObserver: ActivationObserver?

    /// `threads` nil: one per online CPU.
    public init(weights: OuroWeights, threads: Int? = nil, integerPrefill: Bool = true) {
        self.weights = weights
        self.threads = max(1, threads ?? LinearKernels.defaultThreads)
        self.integerPrefill = integerPrefill
        config = weights.config
        rope = RotaryEmbedding(headDim: config.headDim, theta: config.ropeTheta)
        layerNorms = weights.layers.map {
            ($0.attnNorm.floats(), $0.postAttentionNorm.floats(), $0.ffnNorm.floats(), $0.postFFNNorm.floats())
        }
        outputNorm = weights.outputNorm.floats()
        exitGateWeight = weights.exitGateWeight.floats()
        exitGateBias = weights.exitGateBias.floats()[0]
        eps = Float(config.rmsNormEps)
    }

    /// What upstream's forward returns without exit arguments (see `ExitMode.default(for:)`).
    public var defaultExitMode: ExitMode { .default(for: config) }

    /// Uncached forward over all positions: every step's logits, normed states and gate logits.
    public func forward(tokens: [Int]) throws -> LoopOutputs {
        try validate(tokens)
        // One call reads no earlier positions: the cache only receives the K/V, so keep the least.
        let cache = try KVCache(config: config, options: KVCacheOptions(type: .f32, sharing: .last))
        try cache.reserve(tokens.count)
        let activations = try makeActivations(tokens: tokens.count, context: tokens.count)
        return run(tokens[...], cache: cache, activations: activations, lastPositionOnly: false)
    }

    func makeActivations(tokens: Int, context: Int) throws -> Activations {
        try Activations(config: config, tokens: tokens, context: context, threads: threads, integerPrefill: integerPrefill)
    }

    func validate(_ tokens: [Int]) throws {
        guard !tokens.isEmpty else { throw ModelError.invalidRequest("no tokens to run") }
        if let bad = tokens.first(where: { $0 < 0 || $0 >= config.vocabSize }) {
            throw ModelError.tokenOutOfRange(token: bad, vocab: config.vocabSize)
        }
    }

    /// Processes `tokens` at the positions after those already in `cache`, appends their K/V, and
    /// records the steps for all new positions (or only the last one, for generation). The exit gate
    /// runs at every step; the output head only at the steps `selection` names, and `depth` may stop
    /// the loop early (see `LoopDepth`). Tokens must be valid, `activations` large enough and `cache`
    /// reserved for start + T positions (checked by the callers).
    /// `resume`: the first `resume.step` steps of every position already ran (speculative drafts, in
    /// one-token calls that filed their K/V); the loop starts at that step from `resume.hidden`
    /// [T, H], their state after it. Only for a selection that reads one step at or after it.
    func run(_ tokens: ArraySlice<Int>, cache: KVCache, activations a: Activations, lastPositionOnly: Bool,
             logits selection: LogitSelection = .everyStep, depth: LoopDepth = .full,
             decodeIdentical rowScratch: RowAttentionScratch? = nil,
             resume: (step: Int, hidden: [Float])? = nil) -> LoopOutputs {
        let T = tokens.count, H = config.hiddenSize, V = config.vocabSize, S = config.loopCount
        let start = cache.length
        precondition(T <= a.tokens && start + T <= cache.capacity)
        let firstStep = resume?.step ?? 0
        if let resume {
            precondition(resume.hidden.count == T * H && selection.threshold == nil
                         && (selection.singleStep(loopCount: S) ?? -1) >= resume.step, "run: resume needs one step's logits after it")
            resume.hidden.withUnsafeBufferPointer { a.h.pointer.update(from: $0.baseAddress!, count: T * H) }
        } else {
            let embedding = weights.tokenEmbedding
            for (t, token) in tokens.enumerated() {
                dequantizeRow(embedding.type, embedding.row(token), count: H, into: a.h.pointer + t * H)
            }
        }
        rope.tables(start: start, count: T, cos: a.cos.pointer, sin: a.sin.pointer)

        let recorded = lastPositionOnly ? 1 : T
        let firstRecorded = T - recorded
        let stepsToRun: Int
        if case let .firstSteps(n) = depth { stepsToRun = min(max(n, 1), S) } else { stepsToRun = S }
        let onlyStep = selection.singleStep(loopCount: S).map { min($0, stepsToRun - 1) }
        let threshold = selection.threshold
        // Full sharing: the exit step's K/V is copied into the deeper slots after the loop; last/mean:
        // every step files the kept K/V as if it were the exit (`KVCache.filesEveryStep`).
        let stopAtExit = depth == .earlyExit && threshold != nil && recorded == T
        cache.filesEveryStep = stopAtExit && cache.options.sharing != .full
        defer { cache.filesEveryStep = false }
        var exits = [ExitAccumulator](repeating: ExitAccumulator(), count: threshold == nil ? 0 : recorded)
        var exited = [Bool](repeating: false, count: exits.count)
        var picked = [Float](repeating: 0, count: threshold == nil ? 0 : recorded * V)
        var stepLogits: [[Float]] = [], stepHidden: [[Float]] = [], gateLogits: [[Float]] = []
        // Speculative verification: every product and every attention as T == 1 decoding does them.
        let rowScratch = T > 1 ? rowScratch : nil
        a.kernels.decodeIdentical = rowScratch != nil
        defer { a.kernels.decodeIdentical = false }
        for _ in 0..<min(firstStep, stepsToRun) {
            // Steps that ran before this call: nothing recorded here.
            stepLogits.append([])
            stepHidden.append([])
            gateLogits.append([])
        }
        for step in firstStep..<max(firstStep, stepsToRun) {
            // After the attention of the last layer of the last step only the recorded rows are read
            // again (their K/V are filed by then), so that layer's o/MLP products skip the rest (as
            // llama.cpp's inp_out_ids): a 64-token prompt saves 63/64 of one layer's o and MLP. Not
            // under an activation observer (imatrix calibration observes every row).
            let lastBlock = step == stepsToRun - 1 && recorded < T && rowScratch == nil && activationObserver == nil
            for layer in 0..<config.layerCount {
                block(layer, slot: step * config.layerCount + layer, tokens: T, start: start, cache: cache, a, rowScratch: rowScratch,
                      keptRowsFrom: lastBlock && layer == config.layerCount - 1 ? firstRecorded : 0)
            }
            rmsNorm(a.h.pointer, rows: T, weight: outputNorm, into: a.h.pointer)
            // The normed state is both this step's output and the next step's input.
            let states = a.h.pointer + firstRecorded * H
            stepHidden.append(a.h.array(from: firstRecorded * H, count: recorded * H))
            let gates = (0..<recorded).map { t in
                exitGateBias + cblas_sdot(Int32(H), states + t * H, 1, exitGateWeight, 1)
            }
            gateLogits.append(gates)
            if let threshold {
                // Positions whose exit step this is get their logits now, and only now.
                let last = step == stepsToRun - 1
                let exiting = (0..<recorded).filter { t in
                    guard !exited[t] else { return false }
                    exited[t] = exits[t].reaches(threshold, gateLogit: gates[t], step: step, steps: S) || last
                    return exited[t]
                }
                stepLogits.append([])
                if !exiting.isEmpty {
                    head(exiting, of: states, a)
                    for (i, t) in exiting.enumerated() {
                        picked.withUnsafeMutableBufferPointer { p in
                            (p.baseAddress! + t * V).update(from: a.logits.pointer + i * V, count: V)
                        }
                    }
                }
                if stopAtExit && !exited.contains(false) {
                    if step < S - 1 {
                        for position in start..<start + T { cache.copyStep(step, toDeeperStepsAt: position) }
                    }
                    break
                }
            } else if onlyStep == nil || onlyStep == step {
                head(Array(0..<recorded), of: states, a)
                stepLogits.append(a.logits.array(count: recorded * V))
            } else {
                stepLogits.append([])
            }
        }
        cache.advance(by: T)
        var outputs = LoopOutputs(steps: S, tokens: recorded, vocab: V, hidden: H,
                                  stepLogits: stepLogits, stepHidden: stepHidden, gateLogits: gateLogits)
        if let threshold { outputs.precomputed = (.threshold(threshold), picked) }
        return outputs
    }

    /// Output head for the given rows of `states` into the first rows of `a.logits`; non-contiguous
    /// rows are gathered into `a.normed` (free between blocks) first.
    private func head(_ rows: [Int], of states: UnsafeMutablePointer<Float>, _ a: Activations) {
        let H = config.hiddenSize
        var input = UnsafePointer(states + rows[0] * H)
        if rows != Array(rows[0]..<rows[0] + rows.count) {
            for (i, t) in rows.enumerated() { (a.normed.pointer + i * H).update(from: states + t * H, count: H) }
            input = UnsafePointer(a.normed.pointer)
        }
        activationObserver?.observe(.output, layer: nil, rows: input, count: rows.count, columns: H)
        a.kernels.linear(weights.output, input, tokens: rows.count, into: a.logits.pointer)
    }

    /// One sandwich-norm decoder block on the residual stream `a.h`:
    /// h += post_attention_norm(attn(attn_norm(h))); h += post_ffw_norm(mlp(ffn_norm(h))).
    /// `keptRowsFrom`: rows before it are not read after this block, so its products after the
    /// attention leave them as they are.
    private func block(_ layer: Int, slot: Int, tokens T: Int, start: Int, cache: KVCache, _ a: Activations,
                       rowScratch: RowAttentionScratch?, keptRowsFrom first: Int = 0) {
        let w = weights.layers[layer], norms = layerNorms[layer]
        let H = config.hiddenSize, I = config.intermediateSize
        let kernels = a.kernels

        rmsNorm(a.h.pointer, rows: T, weight: norms.attn, into: a.normed.pointer)
        activationObserver?.observe(.attentionInput, layer: layer, rows: a.normed.pointer, count: T, columns: H)
        kernels.linear([w.q, w.k, w.v], a.normed.pointer, tokens: T, into: [a.q.pointer, a.k.pointer, a.v.pointer])
        if let rowScratch {
            attentionRowByRow(slot: slot, tokens: T, start: start, cache: cache, a, scratch: rowScratch)
        } else {
            attention(slot: slot, tokens: T, start: start, cache: cache, a)
        }
        let R = T - first, h = a.h.pointer + first * H   // the rows still read, and their residual stream
        activationObserver?.observe(.attentionOutput, layer: layer, rows: a.attention.pointer, count: T, columns: w.o.columns)
        kernels.linear(w.o, a.attention.pointer + first * w.o.columns, tokens: R, into: a.projected.pointer)
        rmsNorm(a.projected.pointer, rows: R, weight: norms.postAttention, into: a.projected.pointer)
        cblas_saxpy(Int32(R * H), 1, a.projected.pointer, 1, h, 1)

        rmsNorm(h, rows: R, weight: norms.ffn, into: a.normed.pointer)
        activationObserver?.observe(.ffnInput, layer: layer, rows: a.normed.pointer, count: T, columns: H)
        kernels.gatedUnit(gate: w.gate, up: w.up, a.normed.pointer, tokens: R, into: a.gate.pointer, up: a.up.pointer)
        activationObserver?.observe(.ffnDownInput, layer: layer, rows: a.gate.pointer, count: T, columns: I)
        kernels.linear(w.down, a.gate.pointer, tokens: R, into: a.projected.pointer)
        rmsNorm(a.projected.pointer, rows: R, weight: norms.postFFN, into: a.projected.pointer)
        cblas_saxpy(Int32(R * H), 1, a.projected.pointer, 1, h, 1)
    }

    /// RMSNorm per row in f32: x * 1/sqrt(mean(x²) + eps) * w, the squares summed in element order.
    /// `output` may alias `input`. In C (ck_rms_norm: 16 rows at a time, bit for bit the scalar loop).
    func rmsNorm(_ input: UnsafeMutablePointer<Float>, rows: Int, weight: [Float], into output: UnsafeMutablePointer<Float>) {
        weight.withUnsafeBufferPointer { w in
            ck_rms_norm(input, output, w.baseAddress!, rows, config.hiddenSize, eps)
        }
    }
}
