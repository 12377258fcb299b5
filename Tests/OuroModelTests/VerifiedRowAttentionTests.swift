import CKernels
import XCTest
@testable import OuroModel

/// The verification pass's batched attention (each cached block read once for all rows) against the
/// T one-token calls it replaces: bit for bit on random data, for every KV cache type, one and two
/// query heads per kv head, head dims 64, 96 and 128, one and two threads, every kernel level the
/// machine has (AVX-512: the f16 rows kernel, kernels_attention_rows.c), and rows that
/// start at position 0 or cross a 64-position softmax block and a 256-position cache chunk.
final class VerifiedRowAttentionTests: XCTestCase {

    private func config(heads: Int, kvHeads: Int, headDim: Int) -> OuroConfiguration {
        OuroConfiguration(hiddenSize: heads * headDim, intermediateSize: 64, layerCount: 2, headCount: heads,
                          kvHeadCount: kvHeads, headDim: headDim, vocabSize: 16, maxPositions: 1024)
    }

    private struct Rows {
        let q: [Float], k: [Float], v: [Float]
        let cache: KVCache
    }

    /// A cache holding random K/V for positions ..< start + T in slot (step 1, layer 0); the last T
    /// of them are also the rows' own f32 K/V, as the verification pass files them before attending.
    private func rows(_ config: OuroConfiguration, type: KVCacheType, start: Int, tokens T: Int, seed: UInt64) throws -> Rows {
        var g = UnitIntervalGenerator(state: seed)
        let kvWidth = config.kvHeadCount * config.headDim, qWidth = config.headCount * config.headDim
        let cache = try KVCache(config: config, options: KVCacheOptions(type: type, sharing: .full))
        try cache.reserve(start + T)
        let earlierK = (0..<start * kvWidth).map { _ in g.next() * 2 }, earlierV = (0..<start * kvWidth).map { _ in g.next() }
        if start > 0 {
            cache.store(step: 1, layer: 0, keys: earlierK, values: earlierV, tokens: start, start: 0)
        }
        let k = (0..<T * kvWidth).map { _ in g.next() * 2 }, v = (0..<T * kvWidth).map { _ in g.next() }
        cache.store(step: 1, layer: 0, keys: k, values: v, tokens: T, start: start)
        let q = (0..<T * qWidth).map { _ in g.next() * 2 }
        return Rows(q: q, k: k, v: v, cache: cache)
    }

    private func attend(_ rows: Rows, _ attention: VerifiedRowAttention, keptSlot: Int, start: Int, tokens T: Int,
                        batched: Bool) -> [Float] {
        var out = [Float](repeating: .nan, count: T * attention.heads * attention.headDim)
        let scratch = RowAttentionScratch()
        out.withUnsafeMutableBufferPointer { out in
            if batched {
                attention.batched(cache: rows.cache, keptSlot: keptSlot, tokens: T, start: start,
                                  q: rows.q, k: rows.k, v: rows.v, out: out.baseAddress!, scratch: scratch)
            } else {
                attention.perRow(cache: rows.cache, keptSlot: keptSlot, tokens: T, start: start,
                                 q: rows.q, k: rows.k, v: rows.v, out: out.baseAddress!, scratch: scratch)
            }
        }
        return out
    }

    func testBatchedRowsAreTheOneTokenCallsBitForBit() throws {
        let saved = ck_level()
        defer { ck_set_level(saved) }
        let levels = [Int32(CK_LEVEL_SCALAR), Int32(CK_LEVEL_AVX2), Int32(CK_LEVEL_AVX512VNNI)].filter { $0 <= saved }
        // (start, T): from position 0; across the 64-position block at 64; across the cache chunk at 256.
        let placements = [(0, 3), (61, 5), (250, 9), (254, 2)]
        var compared = 0
        for level in levels {
            XCTAssertEqual(ck_set_level(level), level)
            for type in KVCacheType.allCases {
                for (heads, kvHeads, headDim) in [(4, 4, 64), (4, 2, 64), (2, 1, 96), (2, 2, 128)] {
                    let config = config(heads: heads, kvHeads: kvHeads, headDim: headDim)
                    for (start, T) in placements {
                        let rows = try rows(config, type: type, start: start, tokens: T, seed: UInt64(start * 131 + T + headDim))
                        let keptSlot = rows.cache.keptSlot(step: 1, layer: 0)
                        for threads in [1, 2] {
                            let attention = VerifiedRowAttention(headDim: headDim, heads: heads, kvHeads: kvHeads, threads: threads)
                            let reference = attend(rows, attention, keptSlot: keptSlot, start: start, tokens: T, batched: false)
                            let batched = attend(rows, attention, keptSlot: keptSlot, start: start, tokens: T, batched: true)
                            let label = "level \(level), \(type), \(heads)/\(kvHeads) heads of \(headDim), start \(start), T \(T), \(threads) threads"
                            XCTAssertFalse(reference.contains { !$0.isFinite }, label)
                            XCTAssertEqual(batched.map(\.bitPattern), reference.map(\.bitPattern), label)
                            compared += 1
                        }
                    }
                }
            }
        }
        XCTAssertGreaterThanOrEqual(compared, KVCacheType.allCases.count * 4 * 4 * 2)
    }

    /// Independent of the kernels: with an f32 cache, row t is softmax attention (in doubles) over
    /// positions ..< start + t + 1, its own included.
    func testBatchedRowsAreSoftmaxAttentionOverWhatEachRowSees() throws {
        let heads = 4, kvHeads = 2, headDim = 64, start = 250, T = 9
        let config = config(heads: heads, kvHeads: kvHeads, headDim: headDim)
        let rows = try rows(config, type: .f32, start: start, tokens: T, seed: 99)
        var allK = [Float](), allV = [Float]()
        var g = UnitIntervalGenerator(state: 99)
        let kvWidth = kvHeads * headDim, qWidth = heads * headDim
        allK = (0..<start * kvWidth).map { _ in g.next() * 2 }
        allV = (0..<start * kvWidth).map { _ in g.next() }
        allK += rows.k
        allV += rows.v
        let attention = VerifiedRowAttention(headDim: headDim, heads: heads, kvHeads: kvHeads, threads: 2)
        let out = attend(rows, attention, keptSlot: rows.cache.keptSlot(step: 1, layer: 0), start: start, tokens: T, batched: true)
        let scale = 1 / Double(headDim).squareRoot()
        for t in 0..<T {
            for head in 0..<heads {
                let kvHead = head / (heads / kvHeads)
                let q = rows.q[(t * qWidth + head * headDim)...].prefix(headDim).map(Double.init)
                let scores = (0..<start + t + 1).map { p in
                    zip(q, allK[(p * kvWidth + kvHead * headDim)...].prefix(headDim)).reduce(0) { $0 + $1.0 * Double($1.1) } * scale
                }
                let top = scores.max()!
                let weights = scores.map { Foundation.exp($0 - top) }
                let total = weights.reduce(0, +)
                for i in 0..<headDim {
                    var expected = 0.0
                    for (p, w) in weights.enumerated() { expected += w * Double(allV[p * kvWidth + kvHead * headDim + i]) }
                    expected /= total
                    XCTAssertEqual(Double(out[t * qWidth + head * headDim + i]), expected, accuracy: 2e-5, "row \(t), head \(head), dim \(i)")
                }
            }
        }
    }
}
