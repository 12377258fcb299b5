import CKernels
import XCTest
@testable import OuroModel

/// The integer-domain attention over a Q8_0 cache (kernels_attention_q8*.c): every SIMD level
/// against the plain-C definition, over spans cut as the cache cuts them (chunks of 256
/// positions), for the head dims and query-head groups the fixtures and Ouro-1.4B use.
final class KVCacheQ8AttentionTests: XCTestCase {

    /// Attention of `rows` query rows over `positions` stored q8_0 positions, handed over in spans
    /// of at most 256 (one per cache chunk), at kernel level `level`. One token (decode): the rows
    /// are a kv head's `rows` query heads at one position; otherwise one row per position, causal.
    private func attend(level: Int32, dim: Int, positions: Int, rows: Int, decode: Bool, seed: UInt64) -> [Float] {
        var g = UnitIntervalGenerator(state: seed)
        let rowBytes = KVCacheType.q8_0.rowBytes(dim: dim)
        var keys = [UInt8](repeating: 0, count: positions * rowBytes), values = keys
        for p in 0..<positions {
            // Keys and values of varying size per position, so the per-block scales matter.
            let size = 0.2 + 3 * abs(g.next())
            let k = (0..<dim).map { _ in g.next() * size }, v = (0..<dim).map { _ in g.next() * size }
            ck_kv_store(Int32(CK_KV_Q8_0), k, Int32(dim), &keys[p * rowBytes])
            ck_kv_store(Int32(CK_KV_Q8_0), v, Int32(dim), &values[p * rowBytes])
        }
        let q = (0..<rows * dim).map { _ in g.next() * 2 }
        let previous = ck_level()
        defer { ck_set_level(previous) }
        ck_set_level(level)
        var out = [Float](repeating: 0, count: rows * dim)
        var running = [Float](repeating: 0, count: 2 * rows)
        var scratch = [Float](repeating: 0, count: ck_attn_scratch_floats())
        keys.withUnsafeBytes { k in values.withUnsafeBytes { v in q.withUnsafeBufferPointer { qp in
            out.withUnsafeMutableBufferPointer { op in running.withUnsafeMutableBufferPointer { rp in
                scratch.withUnsafeMutableBufferPointer { sp in
                    // Decode: every row sees all positions; prefill: row r (position positions - rows + r) sees up to itself.
                    var state = ck_attn_rows(rows: Int32(rows), dim: Int32(dim), q: qp.baseAddress!, ldq: dim,
                                             limit0: Int32(decode ? positions : positions - rows + 1),
                                             rows_per_position: Int32(decode ? rows : 1), scale: 1 / Float(dim).squareRoot(),
                                             max: rp.baseAddress!, sum: rp.baseAddress! + rows, out: op.baseAddress!, ldo: dim,
                                             scratch: sp.baseAddress!)
                    ck_attn_begin(&state)
                    for first in stride(from: 0, to: positions, by: KVCache.baseChunkPositions) {
                        var span = ck_kv_span(type: Int32(CK_KV_Q8_0), k: k.baseAddress! + first * rowBytes,
                                              v: v.baseAddress! + first * rowBytes, stride: rowBytes,
                                              count: Int32(min(KVCache.baseChunkPositions, positions - first)), first: Int32(first))
                        ck_attend(&span, &state)
                    }
                    ck_attn_finish(&state, op.baseAddress!, dim)
                }
            } }
        } } }
        return out
    }

    func testEverySIMDLevelEqualsThePlainDefinitionAcrossChunkAndBlockBoundaries() throws {
        var levels: [Int32] = []
        if ck_best_level() >= CK_LEVEL_AVX2 { levels.append(Int32(CK_LEVEL_AVX2)) }
        if ck_best_level() >= CK_LEVEL_AVX512VNNI { levels.append(Int32(CK_LEVEL_AVX512VNNI)) }
        try XCTSkipIf(levels.isEmpty, "no SIMD level for the Q8_0 attention on this CPU")
        // Head dims of the fixtures (64) and Ouro-1.4B (128), the smallest (32) and the largest the
        // integer path takes (256); query-head groups 1 (tiny-a, trained-s, 1.4B) and 4 (tiny-b) and
        // 2; position counts around the 64-position key blocks and the 256-position chunks.
        for dim in [32, 64, 128, 256] {
            for group in [1, 2, 4] {
                for positions in [1, 3, 63, 64, 65, 255, 256, 257, 600] {
                    let seed = UInt64(dim * 1000 + group * 100 + positions)
                    let plain = attend(level: Int32(CK_LEVEL_SCALAR), dim: dim, positions: positions, rows: group, decode: true, seed: seed)
                    let largest = plain.map(abs).max()!
                    XCTAssertTrue(plain.allSatisfy(\.isFinite))
                    for level in levels {
                        let fast = attend(level: level, dim: dim, positions: positions, rows: group, decode: true, seed: seed)
                        // Same integers; the f32 sums differ in order, and a score that moves by an
                        // ulp can move a 15-bit weight by one step (1 / 32767 of the block's largest).
                        for i in plain.indices {
                            XCTAssertEqual(fast[i], plain[i], accuracy: 1e-6 + 1e-4 * largest,
                                           "level \(level) dim \(dim) group \(group) positions \(positions) [\(i)]")
                        }
                    }
                }
            }
        }
        // A prompt's rows over a cached prefix: tiles of 64 rows, causal mask inside the last blocks.
        for positions in [70, 300] {
            let plain = attend(level: Int32(CK_LEVEL_SCALAR), dim: 128, positions: positions, rows: 66, decode: false, seed: 9)
            let largest = plain.map(abs).max()!
            for level in levels {
                let fast = attend(level: level, dim: 128, positions: positions, rows: 66, decode: false, seed: 9)
                for i in plain.indices {
                    XCTAssertEqual(fast[i], plain[i], accuracy: 1e-6 + 1e-4 * largest, "level \(level) prompt rows, \(positions) [\(i)]")
                }
            }
        }
    }
}
