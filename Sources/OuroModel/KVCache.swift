import CKernels
import OuroIO

/// How each cached key/value row is stored.
public enum KVCacheType: String, CaseIterable, Sendable {
    /// 4 bytes per element: exactly what the forward pass computed.
    case f32
    /// IEEE half, round to nearest even: 2 bytes per element.
    case f16
    /// ggml Q8_0 blocks of 32 (f16 scale + 32 int8): 34 bytes per 32 elements. Needs head_dim % 32 == 0.
    case q8_0

    var kernelType: Int32 {
        switch self {
        case .f32: return Int32(CK_KV_F32)
        case .f16: return Int32(CK_KV_F16)
        case .q8_0: return Int32(CK_KV_Q8_0)
        }
    }

    /// Bytes of one head's row of `dim` elements.
    public func rowBytes(dim: Int) -> Int { ck_kv_row_bytes(kernelType, Int32(dim)) }
}

/// Which keys and values a position keeps across the loop steps.
public enum KVSharing: String, CaseIterable, Sendable {
    /// One K/V per (loop step, layer): upstream's exact semantics.
    case full
    /// Only the last loop step's K/V per layer; every step of a later token attends to it.
    case last
    /// The mean over loop steps of each layer's K/V.
    case mean
}

/// The KV cache a session or generation uses: element type, cross-step sharing and context limit.
public struct KVCacheOptions: Sendable, Equatable {
    public var type: KVCacheType
    public var sharing: KVSharing
    /// Most positions the cache may hold; nil: the model's max_position_embeddings.
    public var contextLimit: Int?

    public init(type: KVCacheType = .f16, sharing: KVSharing = .full, contextLimit: Int? = nil) {
        self.type = type
        self.sharing = sharing
        self.contextLimit = contextLimit
    }

    /// f32 and full sharing: what the forward pass computes, nothing rounded or shared.
    public static let exact = KVCacheOptions(type: .f32, sharing: .full)

    /// The positions this cache may hold for `config`, or a one-line reason it cannot be used.
    public func context(for config: OuroConfiguration) throws -> Int {
        if type == .q8_0 && config.headDim % 32 != 0 {
            throw ModelError.invalidRequest("a q8_0 KV cache needs head_dim to be a multiple of 32; this model's is \(config.headDim)")
        }
        guard let limit = contextLimit else { return config.maxPositions }
        guard limit >= 1 else { throw ModelError.invalidRequest("the context limit must be 1 or more (got \(limit))") }
        guard limit <= config.maxPositions else {
            throw ModelError.invalidRequest("a context of \(limit) positions exceeds the model's max_position_embeddings (\(config.maxPositions))")
        }
        return limit
    }

    /// K/V slots each position keeps: loop steps x layers (full) or layers (last, mean).
    public func keptSlots(for config: OuroConfiguration) -> Int {
        sharing == .full ? config.loopCount * config.layerCount : config.layerCount
    }

    /// Cache bytes per position: kept slots x (K + V) x kv heads x one head row in `type`.
    public func bytesPerPosition(for config: OuroConfiguration) -> Int {
        keptSlots(for: config) * 2 * config.kvHeadCount * type.rowBytes(dim: config.headDim)
    }
}

/// Keys and values of every position processed so far. With `full` sharing there is one slot per
/// (loop step, layer): the same layer sees a different input at each loop step, so each step keeps
/// its own K and V (upstream UniversalTransformerCache index = step * layers + layer). With `last`
/// and `mean` there is one kept slot per layer.
///
/// Memory comes in chunks of `chunkPositions` positions, allocated as positions arrive (`reserve`),
/// never moved: growing costs no copy. In a chunk, each (slot, K or V, kv head) holds its rows
/// contiguously, so attention reads one head's keys as a strided run of rows. A decode step reads
/// every such run of every chunk, and from memory it streams faster the longer the runs are and the
/// fewer page edges they cross (Docs/KV-CACHE.md): chunks of a few MiB or more are 256, 512 or 1,024
/// positions long (the longest that stays within `longChunkBytes`) in 2 MiB huge pages, and the
/// next chunk is faulted in a little per token ahead of its first position (`faultAhead`), so no
/// token pays for a whole chunk's page faults at once.
///
/// A forward call's own new positions are not read from here: attention takes them from the call's
/// f32 activations (see `OuroRunner.attention`) and `store` files them afterwards, in the kept form.
final class KVCache: @unchecked Sendable {
    /// Positions of a chunk when a chunk would be small (under `hugeChunkBytes`), and the shortest chunk.
    static let baseChunkPositions = 256
    /// Longest chunk, in positions: 4x longer runs per (slot, K/V, head) than the base.
    static let longestChunkPositions = 1024
    /// Chunks at least this large may grow past the base length (and then go in huge pages); smaller
    /// caches (the tiny test fixtures) keep 256-position chunks in plain memory.
    static let hugeChunkBytes = 4 << 20
    /// A chunk doubles in length only while it stays within this many bytes: memory allocated ahead
    /// of the positions held is at most one chunk (q8_0/last at Ouro-1.4B: 1,024 positions, 102 MiB).
    static let longChunkBytes = 128 << 20

    /// Positions per chunk for a cache of `bytesPerPosition` that holds at most `limit` positions (a
    /// chunk grows no longer than the limit needs: a short `--ctx` keeps short chunks).
    static func chunkPositions(bytesPerPosition: Int, limit: Int = .max) -> Int {
        var positions = baseChunkPositions
        guard positions * bytesPerPosition >= hugeChunkBytes else { return positions }
        while positions < longestChunkPositions && 2 * positions <= limit && 2 * positions * bytesPerPosition <= longChunkBytes {
            positions *= 2
        }
        return positions
    }

    /// Positions per chunk (`chunkPositions(bytesPerPosition:)`).
    let chunkPositions: Int
    /// Chunks come from `HugePages` (else from the Swift allocator).
    let hugePages: Bool

    let options: KVCacheOptions
    let steps: Int, layers: Int, kvHeads: Int, headDim: Int
    /// Bytes of one head's row in the stored type.
    let rowBytes: Int
    let keptSlots: Int
    /// Most positions this cache may hold.
    let limit: Int
    /// Positions stored (the same in every slot between forward calls).
    private(set) var length = 0
    private var chunks: [UnsafeMutableRawPointer] = []
    private let chunkBytes: Int
    /// Huge-page chunks: bytes from the start of the chunks faulted in so far, in chunk order
    /// (chunk i covers [i, i + 1) x chunkBytes), by `faultAhead` or already written.
    private var faultedBytes = 0
    /// `mean` sharing: f32 running sums of the steps' K and V of the call in progress, [layer][row][kvWidth].
    private var meanKeys: FloatBuffer?, meanValues: FloatBuffer?
    /// Early exit under last/mean sharing: every step files the kept K/V its positions would keep if
    /// they exited at it (last: this step's; mean: the mean over all steps with the deeper ones
    /// counted as this one, as full sharing's `copyStep` makes them), so the slot holds the exit
    /// step's value whichever step that turns out to be. Off: only the last step files (the reference).
    var filesEveryStep = false
    private var meanExitKeys: FloatBuffer?, meanExitValues: FloatBuffer?

    /// Throws a one-line error when the options cannot be used with this model.
    init(config: OuroConfiguration, options: KVCacheOptions = .exact) throws {
        self.options = options
        limit = try options.context(for: config)
        steps = config.loopCount
        layers = config.layerCount
        kvHeads = config.kvHeadCount
        headDim = config.headDim
        rowBytes = options.type.rowBytes(dim: headDim)
        keptSlots = options.keptSlots(for: config)
        guard let perPosition = OuroConfiguration.checkedProduct([keptSlots, 2, kvHeads, rowBytes]),
              OuroConfiguration.checkedProduct([perPosition, Self.longestChunkPositions]) != nil else {
            throw ModelError.invalidRequest("a KV cache chunk for this model is too large")
        }
        chunkPositions = Self.chunkPositions(bytesPerPosition: perPosition, limit: limit)
        chunkBytes = perPosition * chunkPositions
        // Only chunks that grew past the base length go in huge pages. A huge page is zeroed whole
        // on its first touch, and every (slot, K/V, head) run spans the chunk, so a short prompt
        // touches every page of it: a 256-position f16/full chunk (192 MiB) zeroed whole added ~12 %
        // to a 64-token prompt's time on the 1.4B shapes (against ~1/4 of it in 4 KiB pages), while
        // its short runs gain little from huge pages at depth.
        hugePages = chunkPositions > Self.baseChunkPositions
    }

    deinit {
        for chunk in chunks {
            if hugePages { HugePages.deallocate(chunk, bytes: chunkBytes) } else { chunk.deallocate() }
        }
    }

    /// Positions allocated so far.
    var capacity: Int { chunks.count * chunkPositions }

    /// Bytes allocated so far.
    var allocatedBytes: Int { chunks.count * chunkBytes }

    /// Makes room for `positions` positions (allocating chunks as needed); a one-line error past the limit.
    func reserve(_ positions: Int) throws {
        guard positions <= limit else {
            throw ModelError.invalidRequest("\(positions) positions exceed the context limit of \(limit)"
                                            + (limit == options.contextLimit ? " (--ctx)" : " (the model's max_position_embeddings)"))
        }
        while capacity < positions { try addChunk() }
    }

    private func addChunk() throws {
        if hugePages {
            guard let chunk = HugePages.allocate(chunkBytes) else {
                throw ModelError.invalidRequest("no memory for \(capacity + chunkPositions) positions of KV cache (\(chunkBytes) bytes more)")
            }
            chunks.append(chunk)
        } else {
            chunks.append(UnsafeMutableRawPointer.allocate(byteCount: chunkBytes, alignment: 64))
        }
    }

    /// Huge-page chunks: makes sure the chunk holding position `length + chunkPositions / 4` is
    /// allocated and faults it in ahead of use, spread over the positions still to come before its
    /// first one (one token at a time: about a 2 MiB page every few tokens; a jump of many positions,
    /// a prompt or a benchmark's fill, pays for the rest at once, as its own writes would have).
    /// A chunk's rows span the whole chunk (every slot, K/V and head has its run in it), so without
    /// this the first token of a chunk would fault all of it (27-107 MB, with the kernel's
    /// compaction) at once. Never past `limit`: the memory held ahead is at most one chunk.
    private func faultAhead() {
        guard hugePages else { return }
        let target = min(length + chunkPositions / 4, limit - 1) / chunkPositions
        while chunks.count <= target {
            guard (try? addChunk()) != nil else { return }   // no memory now: the next reserve says so
        }
        // Chunks before the target hold the positions being written: fault what is left of them.
        let targetStart = target * chunkBytes
        if faultedBytes < targetStart { populate(to: targetStart) }
        let firstOfTarget = target * chunkPositions
        let left = (targetStart + chunkBytes - faultedBytes + HugePages.pageBytes - 1) / HugePages.pageBytes
        let positionsBefore = firstOfTarget - length
        // The share of the target's pages due now: all of them once its first position is reached.
        let due = positionsBefore <= 0 ? left : (left + positionsBefore - 1) / positionsBefore
        populate(to: min(targetStart + chunkBytes, faultedBytes + due * HugePages.pageBytes))
    }

    /// Faults in the chunks' bytes from `faultedBytes` up to `end` (chunk-order offset).
    private func populate(to end: Int) {
        while faultedBytes < end {
            let chunk = faultedBytes / chunkBytes, offset = faultedBytes % chunkBytes
            let count = min(end - faultedBytes, chunkBytes - offset)
            HugePages.populate(chunks[chunk] + offset, count: count)
            faultedBytes += count
        }
    }

    /// The kept slot a (loop step, layer) reads earlier positions from and stores into.
    @inline(__always)
    func keptSlot(step: Int, layer: Int) -> Int {
        options.sharing == .full ? step * layers + layer : layer
    }

    /// Row of `position` for (kept slot, K (0) or V (1), kv head).
    @inline(__always)
    func row(_ slot: Int, _ kv: Int, _ head: Int, _ position: Int) -> UnsafeMutableRawPointer {
        let chunk = position / chunkPositions, offset = position % chunkPositions
        return chunks[chunk] + (((slot * 2 + kv) * kvHeads + head) * chunkPositions + offset) * rowBytes
    }

    /// Spans of positions [0, end) of one kv head in a kept slot, one per chunk, for `ck_attend`.
    func spans(slot: Int, head: Int, end: Int) -> [ck_kv_span] {
        stride(from: 0, to: end, by: chunkPositions).map { first in
            ck_kv_span(type: options.type.kernelType, k: UnsafeRawPointer(row(slot, 0, head, first)),
                       v: UnsafeRawPointer(row(slot, 1, head, first)), stride: rowBytes,
                       count: Int32(min(chunkPositions, end - first)), first: Int32(first))
        }
    }

    /// Files the K/V rows [T, kvHeads * headDim] that (step, layer) computed for positions
    /// start ..< start + T, in the kept form: every step (full), the last step (last), or the mean
    /// over steps once the last step has added its rows (mean).
    func store(step: Int, layer: Int, keys: UnsafePointer<Float>, values: UnsafePointer<Float>, tokens T: Int, start: Int) {
        let width = kvHeads * headDim
        switch options.sharing {
        case .full:
            write(slot: step * layers + layer, keys: keys, values: values, tokens: T, start: start)
        case .last:
            if step == steps - 1 || filesEveryStep { write(slot: layer, keys: keys, values: values, tokens: T, start: start) }
        case .mean:
            let needed = layers * T * width
            if (meanKeys?.count ?? 0) < needed {
                meanKeys = FloatBuffer(needed)
                meanValues = FloatBuffer(needed)
            }
            let sumK = meanKeys!.pointer + layer * T * width, sumV = meanValues!.pointer + layer * T * width
            if step == 0 {
                sumK.update(from: keys, count: T * width)
                sumV.update(from: values, count: T * width)
            } else {
                for i in 0..<T * width {
                    sumK[i] += keys[i]
                    sumV[i] += values[i]
                }
            }
            if step < steps - 1 && filesEveryStep {
                // (sum of steps 0...step + (deeper steps) x this step's) / steps, in scratch: the sums go on.
                if (meanExitKeys?.count ?? 0) < T * width {
                    meanExitKeys = FloatBuffer(T * width)
                    meanExitValues = FloatBuffer(T * width)
                }
                let exitK = meanExitKeys!.pointer, exitV = meanExitValues!.pointer
                let deeper = Float(steps - 1 - step), inverse = 1 / Float(steps)
                for i in 0..<T * width {
                    exitK[i] = (sumK[i] + deeper * keys[i]) * inverse
                    exitV[i] = (sumV[i] + deeper * values[i]) * inverse
                }
                write(slot: layer, keys: exitK, values: exitV, tokens: T, start: start)
            }
            if step == steps - 1 {
                let inverse = 1 / Float(steps)
                for i in 0..<T * width {
                    sumK[i] *= inverse
                    sumV[i] *= inverse
                }
                write(slot: layer, keys: sumK, values: sumV, tokens: T, start: start)
            }
        }
    }

    private func write(slot: Int, keys: UnsafePointer<Float>, values: UnsafePointer<Float>, tokens T: Int, start: Int) {
        let type = options.type.kernelType, width = kvHeads * headDim
        // A position's kv heads are chunkPositions rows apart in its chunk: one call per K and per V.
        let headStride = chunkPositions * rowBytes
        for t in 0..<T {
            ck_kv_store_heads(type, keys + t * width, Int32(kvHeads), Int32(headDim), row(slot, 0, 0, start + t), headStride)
            ck_kv_store_heads(type, values + t * width, Int32(kvHeads), Int32(headDim), row(slot, 1, 0, start + t), headStride)
        }
    }

    /// Copies loop step `step`'s K/V at `position` into every deeper step's slot (full sharing; an
    /// early-exited token then looks to later tokens as if its deeper steps repeated that step).
    /// With last/mean sharing a position keeps one K/V per layer, so there is nothing to copy.
    func copyStep(_ step: Int, toDeeperStepsAt position: Int) {
        guard options.sharing == .full else { return }
        for layer in 0..<layers {
            for deeper in (step + 1)..<steps {
                for kv in 0..<2 {
                    for head in 0..<kvHeads {
                        row(deeper * layers + layer, kv, head, position)
                            .copyMemory(from: row(step * layers + layer, kv, head, position), byteCount: rowBytes)
                    }
                }
            }
        }
    }

    /// Fills positions length ..< count with copies of positions 0 ..< length, in order and
    /// repeated (for benchmarks: decode reads a long context at its real cost without running a
    /// long prefill; the attention output is meaningless, the bytes read are the same).
    func repeatPositions(upTo count: Int) throws {
        precondition(length > 0, "KVCache: nothing to repeat")
        try reserve(count)
        for slot in 0..<keptSlots {
            for kv in 0..<2 {
                for head in 0..<kvHeads {
                    for position in length..<count {
                        row(slot, kv, head, position).copyMemory(from: row(slot, kv, head, position % length), byteCount: rowBytes)
                    }
                }
            }
        }
        length = max(length, count)
        faultAhead()
    }

    /// Called once every slot holds the new positions.
    func advance(by count: Int) {
        precondition(length + count <= capacity, "KVCache: advance past the reserved positions")
        length += count
        faultAhead()
    }

    /// Forgets positions from `count` on (rollback): no copy, the memory stays for reuse.
    func truncate(to count: Int) {
        length = min(length, max(count, 0))
    }

    func reset() { length = 0 }
}
