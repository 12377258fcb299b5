import CKernels
import Foundation

extension OuroRunner {
    /// RoPE on the new q/k rows, then causal grouped-query attention of the T new queries over
    /// positions 0 ..< start + T; result in `a.attention` [T, nh*D]. Earlier positions come from the
    /// cache's kept slot for (step, layer) in its stored type; the T new positions from this call's
    /// own f32 K/V (for every sharing mode: a token attends to its current step's K/V). The new K/V
    /// are then filed in the cache (`KVCache.store`).
    func attention(slot: Int, tokens T: Int, start: Int, cache: KVCache, _ a: Activations) {
        let D = config.headDim, nh = config.headCount, nkv = config.kvHeadCount
        let half = D / 2, qWidth = nh * D, kvWidth = nkv * D
        for t in 0..<T {
            let cos = a.cos.pointer + t * half, sin = a.sin.pointer + t * half
            rope.apply(a.q.pointer + t * qWidth, heads: nh, cos: cos, sin: sin)
            rope.apply(a.k.pointer + t * kvWidth, heads: nkv, cos: cos, sin: sin)
        }
        let step = slot / config.layerCount, layer = slot % config.layerCount
        let kept = cache.keptSlot(step: step, layer: layer)
        let group = nh / nkv
        let scale = 1 / Float(D).squareRoot()
        let scratch = a.scores.pointer, running = a.scores.pointer + Activations.attentionScratchFloats
        for kvHead in 0..<nkv {
            let spans = cache.spans(slot: kept, head: kvHead, end: start) + [
                ck_kv_span(type: Int32(CK_KV_F32), k: UnsafeRawPointer(a.k.pointer + kvHead * D),
                           v: UnsafeRawPointer(a.v.pointer + kvHead * D), stride: kvWidth * 4,
                           count: Int32(T), first: Int32(start)),
            ]
            // One token: the group's query heads are rows of one pass (each K/V row read once).
            // Several tokens: one pass per query head, a row per token.
            let passes = T == 1 ? [(rows: group, q: kvHead * group * D, ldq: D, perPosition: group)]
                : (0..<group).map { (rows: T, q: (kvHead * group + $0) * D, ldq: qWidth, perPosition: 1) }
            for pass in passes {
                var rows = ck_attn_rows(
                    rows: Int32(pass.rows), dim: Int32(D), q: a.q.pointer + pass.q, ldq: pass.ldq,
                    limit0: Int32(start + 1), rows_per_position: Int32(pass.perPosition), scale: scale,
                    max: running, sum: running + pass.rows, out: a.attention.pointer + pass.q, ldo: pass.ldq,
                    scratch: scratch)
                ck_attn_begin(&rows)
                for var span in spans { ck_attend(&span, &rows) }
                ck_attn_finish(&rows, a.attention.pointer + pass.q, pass.ldq)
            }
        }
        cache.store(step: step, layer: layer, keys: a.k.pointer, values: a.v.pointer, tokens: T, start: start)
    }
}
