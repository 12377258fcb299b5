import COpenBLAS
import Foundation

extension OuroRunner {
    /// RoPE on the new q/k rows, K/V appended to the cache slot, then causal grouped-query attention
    /// of the T new queries over all P = start + T positions; result in `a.attention` [T, nh*D].
    func attention(slot: Int, tokens T: Int, start: Int, cache: KVCache, _ a: Activations) {
        let D = config.headDim, nh = config.headCount, nkv = config.kvHeadCount
        let half = D / 2, qWidth = nh * D, kvWidth = nkv * D
        let P = start + T
        for t in 0..<T {
            let cos = a.cos.pointer + t * half, sin = a.sin.pointer + t * half
            rope.apply(a.q.pointer + t * qWidth, heads: nh, cos: cos, sin: sin)
            rope.apply(a.k.pointer + t * kvWidth, heads: nkv, cos: cos, sin: sin)
            cache.key(slot, start + t).update(from: a.k.pointer + t * kvWidth, count: kvWidth)
            cache.value(slot, start + t).update(from: a.v.pointer + t * kvWidth, count: kvWidth)
        }
        let scale = 1 / Float(D).squareRoot()
        let group = nh / nkv
        let keys = cache.key(slot, 0), values = cache.value(slot, 0)
        let scores = a.scores.pointer
        for head in 0..<nh {
            let kvHead = head / group
            // scores[T, P] = scale · Q_head · K_kvHeadᵀ
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(T), Int32(P), Int32(D),
                        scale, a.q.pointer + head * D, Int32(qWidth), keys + kvHead * D, Int32(kvWidth),
                        0, scores, Int32(P))
            for t in 0..<T {
                let row = scores + t * P
                let visible = start + t + 1          // causal: positions 0 ... start+t
                var maximum = -Float.infinity
                for j in 0..<visible { maximum = max(maximum, row[j]) }
                var sum: Float = 0
                for j in 0..<visible {
                    let e = expf(row[j] - maximum)
                    row[j] = e
                    sum += e
                }
                let inverse = 1 / sum
                for j in 0..<visible { row[j] *= inverse }
                for j in visible..<P { row[j] = 0 }
            }
            // out[T, D] = scores · V_kvHead, into this head's columns of a.attention.
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(T), Int32(D), Int32(P),
                        1, scores, Int32(P), values + kvHead * D, Int32(kvWidth),
                        0, a.attention.pointer + head * D, Int32(qWidth))
        }
    }
}
