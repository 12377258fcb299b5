import CKernels

extension OuroRunner {
    /// `attention` for T rows at consecutive positions, each row bit for bit what the one-token call
    /// decoding that token makes: row t reads positions ..< start+t from the cache in its stored type
    /// (so the T rows' K/V are filed first) and its own position from its f32 K/V, in the same spans
    /// (the online softmax's blocks follow the spans), with the one-token task layout (a kv head's
    /// query heads as the rows of one task). One pool dispatch covers every (row, kv head) task, so
    /// the rows cost no more calls than one token does. Speculative verification uses it (full K/V
    /// sharing only: under last/mean sharing an earlier row's kept K/V would not exist yet).
    func attentionRowByRow(slot: Int, tokens T: Int, start: Int, cache: KVCache, _ a: Activations, scratch: RowAttentionScratch) {
        precondition(cache.options.sharing == .full, "decode-identical attention needs full K/V sharing")
        let D = config.headDim, nh = config.headCount, nkv = config.kvHeadCount
        let half = D / 2, qWidth = nh * D, kvWidth = nkv * D, group = nh / nkv
        for t in 0..<T {
            let cos = a.cos.pointer + t * half, sin = a.sin.pointer + t * half
            rope.apply(a.q.pointer + t * qWidth, heads: nh, cos: cos, sin: sin)
            rope.apply(a.k.pointer + t * kvWidth, heads: nkv, cos: cos, sin: sin)
        }
        let step = slot / config.layerCount, layer = slot % config.layerCount
        cache.store(step: step, layer: layer, keys: a.k.pointer, values: a.v.pointer, tokens: T, start: start)
        let kept = cache.keptSlot(step: step, layer: layer)
        let perTask = Int(ck_attn_scratch_floats()) + 2 * group
        scratch.reserve(floats: T * nkv * perTask)
        var work = RowAttentionWork(
            // Task t * nkv + head: the spans the one-token call at start+t gives that kv head.
            spans: (0..<T).flatMap { t in
                (0..<nkv).map { kvHead in
                    cache.spans(slot: kept, head: kvHead, end: start + t) + [
                        ck_kv_span(type: Int32(CK_KV_F32), k: UnsafeRawPointer(a.k.pointer + t * kvWidth + kvHead * D),
                                   v: UnsafeRawPointer(a.v.pointer + t * kvWidth + kvHead * D), stride: kvWidth * 4,
                                   count: 1, first: Int32(start + t)),
                    ]
                }
            },
            kvHeads: nkv, group: group, start: start, dim: D, qWidth: qWidth, scale: 1 / Float(D).squareRoot(),
            q: a.q.pointer, out: a.attention.pointer, scratch: scratch.buffer!.pointer, scratchPerTask: perTask)
        let tasks = T * nkv
        if threads <= 1 {
            for task in 0..<tasks { work.run(task) }
        } else {
            withUnsafeMutablePointer(to: &work) { context in
                ck_parallel_for(Int32(tasks), Int32(threads), { context, index in
                    context!.assumingMemoryBound(to: RowAttentionWork.self).pointee.run(Int(index))
                }, context)
            }
        }
    }
}

/// Scratch for `attentionRowByRow`: one attention task's floats per (row, kv head).
final class RowAttentionScratch {
    private(set) var buffer: FloatBuffer?

    func reserve(floats: Int) {
        if (buffer?.count ?? 0) < floats { buffer = FloatBuffer(floats) }
    }
}

/// Task t * kvHeads + h: kv head h's query heads for row t, as `AttentionWork` runs one token.
private struct RowAttentionWork {
    let spans: [[ck_kv_span]]
    let kvHeads: Int, group: Int, start: Int, dim: Int, qWidth: Int
    let scale: Float
    let q: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>
    let scratch: UnsafeMutablePointer<Float>
    let scratchPerTask: Int

    func run(_ task: Int) {
        let t = task / kvHeads, kvHead = task % kvHeads
        let column = t * qWidth + kvHead * group * dim
        let mine = scratch + task * scratchPerTask
        let running = mine + Int(ck_attn_scratch_floats())
        var state = ck_attn_rows(
            rows: Int32(group), dim: Int32(dim), q: q + column, ldq: dim, limit0: Int32(start + t + 1),
            rows_per_position: Int32(group), scale: scale, max: running, sum: running + group,
            out: out + column, ldo: dim, scratch: mine)
        ck_attn_begin(&state)
        for var span in spans[task] { ck_attend(&span, &state) }
        ck_attn_finish(&state, out + column, dim)
    }
}
