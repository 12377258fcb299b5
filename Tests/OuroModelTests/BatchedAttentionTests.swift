import OuroTestSupport
import XCTest
@testable import OuroModel

/// `BatchedForward.batchedAttention` (every sequence's attention and KV store as one pool job, in
/// place in the batch's rows) against `OuroRunner.attention` run sequence by sequence on copies of
/// the same rows: the same attention output and the same cache bytes, bit for bit.
final class BatchedAttentionTests: XCTestCase {
    func testOneJobEqualsSequenceBySequenceBitForBit() throws {
        for kv in [KVCacheOptions(), KVCacheOptions(type: .f32, sharing: .full)] {   // f16 (the default) and f32 caches
            let runner = try OuroRunner(weights: OuroWeights.load(checkpoint: Fixtures.folder("ouro-tiny-b")), threads: 2)
            let config = runner.config
            let batch = BatchedForward(runner: runner)
            // Three sequences with different contexts; then 1, 3 and 1 new rows.
            let sequences = try (0..<3).map { _ in try batch.makeSequence(exit: .lastStep, kv: kv) }
            _ = try batch.run([(sequences[0], [3, 141, 59, 26, 17]), (sequences[1], [9, 32]), (sequences[2], [40, 41, 42, 43, 44, 45, 46])])
            let counts = [1, 3, 1]
            let T = counts.reduce(0, +)
            var ranges: [(row: Int, count: Int, sequence: BatchSequence)] = []
            var row = 0
            for (i, n) in counts.enumerated() {
                try sequences[i].reserve(sequences[i].length + n, config: config)
                ranges.append((row, n, sequences[i]))
                row += n
            }
            let qWidth = config.headCount * config.headDim, kvWidth = config.kvHeadCount * config.headDim, half = config.headDim / 2
            var rng = SystemRandomNumberGenerator()
            let q = (0..<T * qWidth).map { _ in Float.random(in: -2...2, using: &rng) }
            let k = (0..<T * kvWidth).map { _ in Float.random(in: -2...2, using: &rng) }
            let v = (0..<T * kvWidth).map { _ in Float.random(in: -2...2, using: &rng) }
            let slot = config.layerCount + 1   // loop step 1, layer 1

            let a = try runner.makeActivations(tokens: T, context: 1)
            a.q.pointer.update(from: q, count: q.count)
            a.k.pointer.update(from: k, count: k.count)
            a.v.pointer.update(from: v, count: v.count)
            for range in ranges {
                runner.rope.tables(start: range.sequence.length, count: range.count,
                                   cos: a.cos.pointer + range.row * half, sin: a.sin.pointer + range.row * half)
            }
            batch.batchedAttention(slot: slot, rows: T, ranges: ranges, a)
            let together = a.attention.array(count: T * qWidth)
            let cache = sequences.map { s in storedBytes(s, slot: slot, positions: s.length..<(s.length + counts[sequences.firstIndex { $0 === s }!])) }

            // Sequence by sequence, as the batched step ran it before (its rows copied to one-sequence scratch).
            var alone: [Float] = []
            for range in ranges {
                let n = range.count, s = try runner.makeActivations(tokens: n, context: range.sequence.cache.capacity)
                s.q.pointer.update(from: Array(q[range.row * qWidth ..< (range.row + n) * qWidth]), count: n * qWidth)
                s.k.pointer.update(from: Array(k[range.row * kvWidth ..< (range.row + n) * kvWidth]), count: n * kvWidth)
                s.v.pointer.update(from: Array(v[range.row * kvWidth ..< (range.row + n) * kvWidth]), count: n * kvWidth)
                runner.rope.tables(start: range.sequence.length, count: n, cos: s.cos.pointer, sin: s.sin.pointer)
                // Clear what the batched job stored, so the bytes compared below are this call's.
                zeroStored(range.sequence, slot: slot, positions: range.sequence.length..<(range.sequence.length + n))
                runner.attention(slot: slot, tokens: n, start: range.sequence.length, cache: range.sequence.cache, s)
                alone += s.attention.array(count: n * qWidth)
            }
            XCTAssertEqual(together.map(\.bitPattern), alone.map(\.bitPattern), "\(kv.type)")
            XCTAssertTrue(together.contains { $0 != 0 })
            for (i, s) in sequences.enumerated() {
                XCTAssertEqual(cache[i], storedBytes(s, slot: slot, positions: s.length..<(s.length + counts[i])), "\(kv.type) sequence \(i)")
            }
        }
    }

    private func storedBytes(_ s: BatchSequence, slot: Int, positions: Range<Int>) -> [UInt8] {
        let c = s.cache
        var bytes: [UInt8] = []
        for kv in 0..<2 { for head in 0..<c.kvHeads { for p in positions {
            bytes += UnsafeRawBufferPointer(start: c.row(slot, kv, head, p), count: c.rowBytes)
        } } }
        return bytes
    }

    private func zeroStored(_ s: BatchSequence, slot: Int, positions: Range<Int>) {
        let c = s.cache
        for kv in 0..<2 { for head in 0..<c.kvHeads { for p in positions {
            c.row(slot, kv, head, p).initializeMemory(as: UInt8.self, repeating: 0, count: c.rowBytes)
        } } }
    }
}
