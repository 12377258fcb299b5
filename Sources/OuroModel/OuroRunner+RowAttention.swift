import CKernels

extension OuroRunner {
    /// `attention` for T rows at consecutive positions, each row bit for bit what the one-token call
    /// decoding that token makes (`VerifiedRowAttention`): the T rows' K/V are filed first, then each
    /// cached block is read once for all rows. Speculative verification uses it (full K/V sharing
    /// only: under last/mean sharing an earlier row's kept K/V would not exist yet).
    func attentionRowByRow(slot: Int, tokens T: Int, start: Int, cache: KVCache, _ a: Activations, scratch: RowAttentionScratch) {
        precondition(cache.options.sharing == .full, "decode-identical attention needs full K/V sharing")
        let D = config.headDim, nh = config.headCount, nkv = config.kvHeadCount
        applyRoPE(tokens: T, a)
        let step = slot / config.layerCount, layer = slot % config.layerCount
        cache.store(step: step, layer: layer, keys: a.k.pointer, values: a.v.pointer, tokens: T, start: start)
        let rows = VerifiedRowAttention(headDim: D, heads: nh, kvHeads: nkv, threads: threads)
        rows.batched(cache: cache, keptSlot: cache.keptSlot(step: step, layer: layer), tokens: T, start: start,
                     q: a.q.pointer, k: a.k.pointer, v: a.v.pointer, out: a.attention.pointer, scratch: scratch)
    }
}
