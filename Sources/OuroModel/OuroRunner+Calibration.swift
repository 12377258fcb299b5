import Foundation
import Quantization

extension OuroRunner {
    /// Runs `tokens` (one fresh context) through every loop step only for `activationObserver`.
    /// With `outputHead` false the head runs on the last position alone, so its input is observed for
    /// one row instead of all (the head is ~7% of an Ouro-1.4B forward; a caller that is not
    /// collecting the head's input saves it). Nothing is returned: no logits are kept.
    public func observeForward(tokens: [Int], outputHead: Bool) throws {
        try validate(tokens)
        let cache = try KVCache(config: config, options: KVCacheOptions(type: .f32, sharing: .last))
        try cache.reserve(tokens.count)
        let activations = try makeActivations(tokens: tokens.count, context: tokens.count)
        _ = run(tokens[...], cache: cache, activations: activations, lastPositionOnly: !outputHead)
    }
}

extension OuroWeights {
    /// The same model with every projection and the output head re-encoded as `type` in memory (rows
    /// whose length is not whole blocks of `type` stay as they are); norms, gate and token_embd (a
    /// row lookup) are shared. Each source tensor's mapped pages are released once it is encoded, so
    /// resident memory is about the new copy. For calibration forwards: a Q8_0 copy of a bf16 1.4B
    /// model is half its size and runs through the integer kernels. `progress(done, total)` per tensor.
    public func reencoded(as type: GGMLType, progress: ((Int, Int) -> Void)? = nil) throws -> OuroWeights {
        var names: [String] = []
        for layer in 0..<config.layerCount {
            for site in ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"] {
                names.append("blk.\(layer).\(site).weight")
            }
        }
        if !config.tieWordEmbeddings { names.append("output.weight") }
        var replacements: [String: WeightTensor] = [:]
        for (index, name) in names.enumerated() {
            guard let source = tensor(name), source.type != type, source.columns % type.blockSize == 0,
                  let rowBytes = type.rowByteCount(source.columns) else { continue }
            let rows = source.rows, columns = source.columns
            var bytes = [UInt8](repeating: 0, count: rows * rowBytes)
            bytes.withUnsafeMutableBytes { out in
                let address = Int(bitPattern: out.baseAddress!)   // rows are disjoint per part
                let parts = max(1, min(LinearKernels.defaultThreads, rows))
                DispatchQueue.concurrentPerform(iterations: parts) { p in
                    let base = UnsafeMutableRawPointer(bitPattern: address)!
                    let floats = UnsafeMutablePointer<Float>.allocate(capacity: columns)
                    defer { floats.deallocate() }
                    for r in (rows * p / parts)..<(rows * (p + 1) / parts) {
                        dequantizeRow(source.type, source.row(r), count: columns, into: floats)
                        quantizeRow(type, floats, count: columns, into: base + r * rowBytes)
                    }
                }
            }
            replacements[name] = try WeightTensor(type: type, shape: source.shape, copying: bytes)
            source.releasePages()
            progress?(index + 1, names.count)
        }
        return try replacing(replacements)
    }
}

extension BatchedForward {
    /// `sequences` texts of `length` tokens each, sampled from bos at `temperature` in lockstep: every
    /// step runs one new token of every sequence in one batched pass, so the weights are read once per
    /// step for all of them (one sequence at a time reads them once per token). Sequence `s` uses
    /// seed `seed + s`, as separate `OuroRunner.sample` calls would. `progress(done, length)` per step.
    public func sample(sequences: Int, length: Int, seed: UInt64, temperature: Float = 1,
                       progress: ((Int, Int) -> Void)? = nil) throws -> [[Int]] {
        guard sequences > 0, length > 0 else { return [] }
        let bos = runner.config.bosTokenID ?? 0
        let batch = try (0..<sequences).map { _ in try makeSequence(maxPositions: length) }
        var samplers = (0..<sequences).map { Sampler(temperature: temperature, seed: seed &+ UInt64($0)) }
        var texts = [[Int]](repeating: [bos], count: sequences)
        while texts[0].count < length {
            let outputs = try run(batch.indices.map { (batch[$0], [texts[$0].last!]) })
            for s in 0..<sequences { texts[s].append(samplers[s].next(outputs[s].logits(batch[s].exit))) }
            progress?(texts[0].count, length)
        }
        return texts
    }
}
