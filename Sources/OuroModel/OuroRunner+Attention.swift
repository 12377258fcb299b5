import CKernels
import Foundation

extension OuroRunner {
    /// RoPE on the T new query and key rows of `a` (their positions' angles are in `a.cos`/`a.sin`).
    func applyRoPE(tokens T: Int, _ a: Activations) {
        let nh = config.headCount, nkv = config.kvHeadCount, half = config.headDim / 2
        let qWidth = nh * config.headDim, kvWidth = nkv * config.headDim
        for t in 0..<T {
            let cos = a.cos.pointer + t * half, sin = a.sin.pointer + t * half
            rope.apply(a.q.pointer + t * qWidth, heads: nh, cos: cos, sin: sin)
            rope.apply(a.k.pointer + t * kvWidth, heads: nkv, cos: cos, sin: sin)
        }
    }

    /// RoPE on the new q/k rows, then causal grouped-query attention of the T new queries over
    /// positions 0 ..< start + T; result in `a.attention` [T, nh*D]. Earlier positions come from the
    /// cache's kept slot for (step, layer) in its stored type; the T new positions from this call's
    /// own f32 K/V (for every sharing mode: a token attends to its current step's K/V). The new K/V
    /// are then filed in the cache (`KVCache.store`). Query heads are split over the thread pool.
    func attention(slot: Int, tokens T: Int, start: Int, cache: KVCache, _ a: Activations) {
        let D = config.headDim, nh = config.headCount, nkv = config.kvHeadCount
        let qWidth = nh * D, kvWidth = nkv * D
        applyRoPE(tokens: T, a)
        let step = slot / config.layerCount, layer = slot % config.layerCount
        let kept = cache.keptSlot(step: step, layer: layer)
        let group = nh / nkv
        var work = AttentionWork(
            spans: (0..<nkv).map { kvHead in
                cache.spans(slot: kept, head: kvHead, end: start) + [
                    ck_kv_span(type: Int32(CK_KV_F32), k: UnsafeRawPointer(a.k.pointer + kvHead * D),
                               v: UnsafeRawPointer(a.v.pointer + kvHead * D), stride: kvWidth * 4,
                               count: Int32(T), first: Int32(start)),
                ]
            },
            // One token: a kv head's query heads are the rows of one task (each K/V row read once).
            // Several tokens: one task per query head, a row per token.
            perKVHead: T == 1 ? 1 : group, group: group, tokens: T, start: start, dim: D, qWidth: qWidth,
            scale: 1 / Float(D).squareRoot(), q: a.q.pointer, out: a.attention.pointer,
            scratch: a.scores.pointer, scratchPerTask: Activations.attentionScratchFloats(tokens: T, config: config))
        let tasks = nkv * work.perKVHead
        if threads <= 1 || tasks == 1 {
            if T == 1 { work.runChunkMajor(0..<tasks) } else { for task in 0..<tasks { work.run(task) } }
        } else {
            withUnsafeMutablePointer(to: &work) { context in
                ck_parallel_for(Int32(tasks), Int32(threads), { context, index in
                    context!.assumingMemoryBound(to: AttentionWork.self).pointee.run(Int(index))
                }, context)
            }
        }
        cache.store(step: step, layer: layer, keys: a.k.pointer, values: a.v.pointer, tokens: T, start: start)
    }
}

/// One attention call split into tasks: task i is query head i (several tokens) or kv head i's
/// query heads (one token), each with its own slice of scratch.
struct AttentionWork {
    let spans: [[ck_kv_span]]
    let perKVHead: Int, group: Int, tokens: Int, start: Int, dim: Int, qWidth: Int
    let scale: Float
    let q: UnsafeMutablePointer<Float>, out: UnsafeMutablePointer<Float>
    let scratch: UnsafeMutablePointer<Float>
    let scratchPerTask: Int

    /// Task `task`'s attention state over its own scratch slice and output columns.
    private func state(_ task: Int) -> ck_attn_rows {
        let oneToken = tokens == 1
        let rows = oneToken ? group : tokens
        let column = oneToken ? task / perKVHead * group * dim : task * dim
        let ld = oneToken ? dim : qWidth
        let mine = scratch + task * scratchPerTask
        let running = mine + Int(ck_attn_scratch_floats())
        return ck_attn_rows(
            rows: Int32(rows), dim: Int32(dim), q: q + column, ldq: ld, limit0: Int32(start + 1),
            rows_per_position: Int32(oneToken ? group : 1), scale: scale, max: running, sum: running + rows,
            out: out + column, ldo: ld, scratch: mine)
    }

    func run(_ task: Int) {
        var state = state(task)
        ck_attn_begin(&state)
        attendChunks(spans[task / perKVHead], &state)
        ck_attn_finish(&state, state.out, state.ldo)
    }

    /// One token's tasks (one per kv head) chunk by chunk: every head's span of chunk 0, then of
    /// chunk 1, ... In a chunk, head h's K (V) run ends where head h + 1's begins (KVCache layout),
    /// so a layer's cache streams as one K and one V run per chunk instead of one per head and chunk,
    /// and the hardware prefetcher restarts 16x less often: attention over a 4K token's cache from
    /// memory 22.7 -> 24.8 GB/s per CPU second in the kernel harness (Docs/KV-CACHE.md). The same
    /// spans in the same order per head: the same result as `run`, task by task.
    func runChunkMajor(_ tasks: Range<Int>) {
        var states = tasks.map { state($0) }
        for i in states.indices { ck_attn_begin(&states[i]) }
        let chunks = tasks.map { spans[$0 / perKVHead].count }.max() ?? 0
        for c in 0..<chunks {
            for (i, task) in tasks.enumerated() {
                let mine = spans[task / perKVHead]
                guard c < mine.count else { continue }
                var span = mine[c]
                ck_attend(&span, &states[i])
            }
        }
        for i in states.indices { ck_attn_finish(&states[i], states[i].out, states[i].ldo) }
    }
}

/// Runs one attention state over a kv head's chunks in order; the next chunk's first rows load while
/// this one is read.
func attendChunks(_ chunks: [ck_kv_span], _ state: inout ck_attn_rows) {
    for i in chunks.indices {
        if i + 1 < chunks.count {
            var next = chunks[i + 1]
            ck_kv_prefetch(&next, 64)
        }
        var span = chunks[i]
        ck_attend(&span, &state)
    }
}
