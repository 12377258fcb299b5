extension OuroRunner {
    /// `attention` for T rows as T one-token calls at consecutive positions, through a one-token
    /// scratch: row t attends to positions 0 ... start+t exactly as decoding that token would (the
    /// batched products sum over a padded row in another order, a few ulps apart). Speculative
    /// verification uses it so its logits are plain decoding's bit for bit; attention is a small part
    /// of a token's cost, the weights (read once for all rows) are the large one.
    func attentionRowByRow(slot: Int, tokens T: Int, start: Int, cache: KVCache, _ a: Activations, single: Activations) {
        precondition(single.tokens >= 1 && single.context >= start + T)
        let qWidth = config.headCount * config.headDim, kvWidth = config.kvHeadCount * config.headDim
        let half = config.headDim / 2
        for t in 0..<T {
            single.q.pointer.update(from: a.q.pointer + t * qWidth, count: qWidth)
            single.k.pointer.update(from: a.k.pointer + t * kvWidth, count: kvWidth)
            single.v.pointer.update(from: a.v.pointer + t * kvWidth, count: kvWidth)
            single.cos.pointer.update(from: a.cos.pointer + t * half, count: half)
            single.sin.pointer.update(from: a.sin.pointer + t * half, count: half)
            attention(slot: slot, tokens: 1, start: start + t, cache: cache, single)
            (a.attention.pointer + t * qWidth).update(from: single.attention.pointer, count: qWidth)
        }
    }
}
