import CKernels
import Foundation

/// One pool job for a batched step's attention: every sequence's query heads, then every
/// sequence's KV store, as the tasks of one `ck_parallel_for`. Before, each sequence ran its own
/// job (four jobs a layer at four streams, with their rows copied into and out of one-sequence
/// scratch) and its KV store ran on the caller while the worker waited.
struct BatchedAttentionJob {
    /// Per sequence: its attention tasks, its cache and where its rows are.
    var works: [AttentionWork]
    /// First task of each sequence's attention; the last entry is the number of attention tasks.
    var firstTask: [Int]
    var caches: [KVCache]
    var rows: [(row: Int, count: Int, start: Int)]
    let step: Int, layer: Int, kvWidth: Int
    let keys: UnsafeMutablePointer<Float>, values: UnsafeMutablePointer<Float>

    var taskCount: Int { firstTask.last! + caches.count }

    func run(_ task: Int) {
        let attentionTasks = firstTask.last!
        if task >= attentionTasks {
            // KV store of one sequence: its positions are past every span the attention tasks read
            // (earlier positions come from the cache, this step's from the f32 rows), so storing
            // runs alongside them.
            let i = task - attentionTasks, r = rows[i]
            caches[i].store(step: step, layer: layer, keys: keys + r.row * kvWidth, values: values + r.row * kvWidth,
                            tokens: r.count, start: r.start)
            return
        }
        var i = 0
        while firstTask[i + 1] <= task { i += 1 }
        works[i].run(task - firstTask[i])
    }
}

extension BatchedForward {
    /// RoPE on every row (each row's own angles are in `a.cos`/`a.sin`), then causal attention of
    /// each sequence's rows over its own cache and rows, into `a.attention`, and the new K/V filed
    /// in each cache: the arithmetic of `OuroRunner.attention` per sequence (bit for bit: the same
    /// kernels over the same values), read and written in place in the batch's rows, as one pool job.
    func batchedAttention(slot: Int, rows T: Int, ranges: [(row: Int, count: Int, sequence: BatchSequence)], _ a: Activations) {
        let r = runner, config = r.config
        let D = config.headDim, nh = config.headCount, nkv = config.kvHeadCount
        let qWidth = nh * D, kvWidth = nkv * D, group = nh / nkv
        r.applyRoPE(tokens: T, a)
        let step = slot / config.layerCount, layer = slot % config.layerCount

        // One slice of scratch per task, as `OuroRunner.attention` gives each.
        var scratchFloats = 0
        for range in ranges {
            scratchFloats += nkv * (range.count == 1 ? 1 : group) * Activations.attentionScratchFloats(tokens: range.count, config: config)
        }
        if attentionScratch.count < scratchFloats { attentionScratch = FloatBuffer(scratchFloats) }
        var scratch = attentionScratch.pointer

        var job = BatchedAttentionJob(works: [], firstTask: [0], caches: [], rows: [], step: step, layer: layer,
                                      kvWidth: kvWidth, keys: a.k.pointer, values: a.v.pointer)
        job.works.reserveCapacity(ranges.count)
        for range in ranges {
            let n = range.count, first = range.row, cache = range.sequence.cache, start = cache.length
            let kept = cache.keptSlot(step: step, layer: layer)
            let k = a.k.pointer + first * kvWidth, v = a.v.pointer + first * kvWidth
            let perKVHead = n == 1 ? 1 : group
            let perTask = Activations.attentionScratchFloats(tokens: n, config: config)
            job.works.append(AttentionWork(
                spans: (0..<nkv).map { kvHead in
                    cache.spans(slot: kept, head: kvHead, end: start) + [
                        ck_kv_span(type: Int32(CK_KV_F32), k: UnsafeRawPointer(k + kvHead * D), v: UnsafeRawPointer(v + kvHead * D),
                                   stride: kvWidth * 4, count: Int32(n), first: Int32(start)),
                    ]
                },
                perKVHead: perKVHead, group: group, tokens: n, start: start, dim: D, qWidth: qWidth,
                scale: 1 / Float(D).squareRoot(), q: a.q.pointer + first * qWidth, out: a.attention.pointer + first * qWidth,
                scratch: scratch, scratchPerTask: perTask))
            scratch += nkv * perKVHead * perTask
            job.firstTask.append(job.firstTask.last! + nkv * perKVHead)
            job.caches.append(cache)
            job.rows.append((first, n, start))
        }
        let tasks = job.taskCount
        if r.threads <= 1 {
            for task in 0..<tasks { job.run(task) }
        } else {
            withUnsafeMutablePointer(to: &job) { context in
                ck_parallel_for(Int32(tasks), Int32(r.threads), { context, index in
                    context!.assumingMemoryBound(to: BatchedAttentionJob.self).pointee.run(Int(index))
                }, context)
            }
        }
    }
}
