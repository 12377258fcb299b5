import CKernels

/// Attention for the T rows of a speculative verification pass (positions start ..< start + T, their
/// K/V already filed in the cache), each row bit for bit the one-token call decoding that token makes:
/// row t sees positions ..< start + t from the cache in the stored type (f16/q8_0 rounding included)
/// and its own position from its f32 K/V, in the cache's spans (the online softmax's blocks follow
/// them) and with the one-token call's rows (a kv head's query heads).
///
/// `batched` gives every kv head one task whose rows are all T tokens' query heads: each cached
/// block of K/V is read once for all rows (f16 rows widened to f32 once, see kernels_attention.c),
/// row t masked to the positions it sees, and the rows' own positions added afterwards as each
/// row's own one-position span. Every row's block sequence, block sizes and arithmetic are those of
/// its one-token call, so the bits are too. `perRow` runs the T one-token calls (one task per row and
/// kv head): the definition `batched` is tested against.
struct VerifiedRowAttention {
    let headDim: Int, heads: Int, kvHeads: Int, threads: Int

    private var group: Int { heads / kvHeads }
    private var qWidth: Int { heads * headDim }
    private var kvWidth: Int { kvHeads * headDim }

    /// Scratch floats `batched` needs for T rows.
    func batchedScratchFloats(tokens T: Int) -> Int {
        kvHeads * batchedScratchPerTask(tokens: T)
    }

    private func batchedScratchPerTask(tokens T: Int) -> Int {
        let rows = T * group
        return Int(ck_attn_scratch_floats()) + 2 * rows + 2 * rows * headDim
    }

    /// q [T][heads * headDim] (after RoPE), k/v [T][kvHeads * headDim] f32 (the rows' own K/V),
    /// out [T][heads * headDim]. The cache's kept slot holds positions ..< start + T.
    func batched(cache: KVCache, keptSlot: Int, tokens T: Int, start: Int,
                 q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                 out: UnsafeMutablePointer<Float>, scratch: RowAttentionScratch) {
        let perTask = batchedScratchPerTask(tokens: T)
        scratch.reserve(floats: kvHeads * perTask)
        var work = BatchedRowAttentionWork(
            // The cache up to the last row's own position: row t's mask stops it at start + t.
            spans: (0..<kvHeads).map { cache.spans(slot: keptSlot, head: $0, end: start + T - 1) },
            tokens: T, group: group, start: start, dim: headDim, qWidth: qWidth, kvWidth: kvWidth,
            scale: 1 / Float(headDim).squareRoot(), q: q, k: k, v: v, out: out,
            scratch: scratch.buffer!.pointer, scratchPerTask: perTask)
        if threads <= 1 || kvHeads == 1 {
            for task in 0..<kvHeads { work.run(task) }
            return
        }
        withUnsafeMutablePointer(to: &work) { context in
            ck_parallel_for(Int32(kvHeads), Int32(threads), { context, index in
                context!.assumingMemoryBound(to: BatchedRowAttentionWork.self).pointee.run(Int(index))
            }, context)
        }
    }

    /// The same result as T one-token calls, one task per (row, kv head).
    func perRow(cache: KVCache, keptSlot: Int, tokens T: Int, start: Int,
                q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                out: UnsafeMutablePointer<Float>, scratch: RowAttentionScratch) {
        let D = headDim
        let perTask = Int(ck_attn_scratch_floats()) + 2 * group
        scratch.reserve(floats: T * kvHeads * perTask)
        var work = RowAttentionWork(
            // Task t * kvHeads + head: the spans the one-token call at start + t gives that kv head.
            spans: (0..<T).flatMap { t in
                (0..<kvHeads).map { kvHead in
                    cache.spans(slot: keptSlot, head: kvHead, end: start + t) + [
                        ck_kv_span(type: Int32(CK_KV_F32), k: UnsafeRawPointer(k + t * kvWidth + kvHead * D),
                                   v: UnsafeRawPointer(v + t * kvWidth + kvHead * D), stride: kvWidth * 4,
                                   count: 1, first: Int32(start + t)),
                    ]
                }
            },
            kvHeads: kvHeads, group: group, start: start, dim: D, qWidth: qWidth, scale: 1 / Float(D).squareRoot(),
            q: q, out: out, scratch: scratch.buffer!.pointer, scratchPerTask: perTask)
        if threads <= 1 {
            for task in 0..<T * kvHeads { work.run(task) }
            return
        }
        withUnsafeMutablePointer(to: &work) { context in
            ck_parallel_for(Int32(T * kvHeads), Int32(threads), { context, index in
                context!.assumingMemoryBound(to: RowAttentionWork.self).pointee.run(Int(index))
            }, context)
        }
    }
}

/// Scratch for the verified rows' attention.
final class RowAttentionScratch {
    private(set) var buffer: FloatBuffer?

    func reserve(floats: Int) {
        if (buffer?.count ?? 0) < floats { buffer = FloatBuffer(floats) }
    }
}

/// Task h: kv head h's query heads for all T rows (row t * group + g), over the cached spans once,
/// then each row's own position.
private struct BatchedRowAttentionWork {
    let spans: [[ck_kv_span]]
    let tokens: Int, group: Int, start: Int, dim: Int, qWidth: Int, kvWidth: Int
    let scale: Float
    let q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>
    let out: UnsafeMutablePointer<Float>
    let scratch: UnsafeMutablePointer<Float>
    let scratchPerTask: Int

    func run(_ kvHead: Int) {
        let rows = tokens * group, D = dim
        let scores = scratch + kvHead * scratchPerTask
        let maxima = scores + Int(ck_attn_scratch_floats()), sums = maxima + rows
        let queries = sums + rows, accumulated = queries + rows * D
        // The rows' queries side by side ([t * group + g][D]): one stride for the kernel.
        for t in 0..<tokens {
            (queries + t * group * D).update(from: q + t * qWidth + kvHead * group * D, count: group * D)
        }
        var all = ck_attn_rows(
            rows: Int32(rows), dim: Int32(D), q: queries, ldq: D, limit0: Int32(start),
            rows_per_position: Int32(group), scale: scale, max: maxima, sum: sums,
            out: accumulated, ldo: D, scratch: scores)
        ck_attn_begin(&all)
        attendChunks(spans[kvHead], &all)
        for t in 0..<tokens {
            let first = t * group
            var own = ck_kv_span(type: Int32(CK_KV_F32), k: UnsafeRawPointer(k + t * kvWidth + kvHead * D),
                                 v: UnsafeRawPointer(v + t * kvWidth + kvHead * D), stride: kvWidth * 4,
                                 count: 1, first: Int32(start + t))
            var row = ck_attn_rows(
                rows: Int32(group), dim: Int32(D), q: queries + first * D, ldq: D, limit0: Int32(start + t + 1),
                rows_per_position: Int32(group), scale: scale, max: maxima + first, sum: sums + first,
                out: accumulated + first * D, ldo: D, scratch: scores)
            ck_attend(&own, &row)
            ck_attn_finish(&row, out + t * qWidth + kvHead * group * D, D)
        }
    }
}

/// Task t * kvHeads + h: kv head h's query heads for row t, as `AttentionWork` runs one token.
private struct RowAttentionWork {
    let spans: [[ck_kv_span]]
    let kvHeads: Int, group: Int, start: Int, dim: Int, qWidth: Int
    let scale: Float
    let q: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>
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
