import CKernels
import XCTest
@testable import OuroModel

/// The cache's memory at the Ouro-1.4B attention shape (chunks of 1,024 positions, 102 MiB, with a
/// q8_0 cache and last sharing): rows written anywhere in a chunk (its first row, its last layer's
/// rows at its end, the next chunk's first) read back through the spans attention uses, byte for
/// byte what ck_kv_store makes of them; chunk lengths by size; the next chunk faulted in ahead.
final class KVCacheChunkTests: XCTestCase {
    private let config = OuroConfiguration(hiddenSize: 2048, intermediateSize: 5632, layerCount: 24, headCount: 16,
                                           kvHeadCount: 16, headDim: 128, vocabSize: 49152, maxPositions: 4096)

    func testLargeChunksHoldEveryRowWhereTheSpansPoint() throws {
        let cache = try KVCache(config: config, options: KVCacheOptions(type: .q8_0, sharing: .last))
        try cache.reserve(1100)
        XCTAssertEqual(cache.chunkPositions, 1024)
        XCTAssertEqual(cache.capacity, 2048)
        // 24 kept slots x (K, V) x 16 heads x 1,024 positions x 136 bytes per chunk.
        XCTAssertEqual(cache.allocatedBytes, 2 * 24 * 2 * 16 * 1024 * 136)
        let width = config.kvHeadCount * config.headDim
        let positions = [0, 1023, 1024, 1099]
        for (i, position) in positions.enumerated() {
            // The last layer's rows are the chunk's last bytes.
            let keys = (0..<width).map { Float(($0 * 7 + i * 13) % 23) - 11 }
            let values = (0..<width).map { Float(($0 * 5 + i * 3) % 19) - 9 }
            cache.store(step: config.loopCount - 1, layer: 23, keys: keys, values: values, tokens: 1, start: position)
            for head in [0, 15] {
                var expectedK = [UInt8](repeating: 0, count: cache.rowBytes), expectedV = expectedK
                ck_kv_store(Int32(CK_KV_Q8_0), Array(keys[head * 128 ..< head * 128 + 128]), 128, &expectedK)
                ck_kv_store(Int32(CK_KV_Q8_0), Array(values[head * 128 ..< head * 128 + 128]), 128, &expectedV)
                let spans = cache.spans(slot: 23, head: head, end: 1100)
                XCTAssertEqual(spans.count, 2)
                let span = spans[position / 1024]
                XCTAssertEqual(Int(span.first), position / 1024 * 1024)
                let offset = (position - Int(span.first)) * Int(span.stride)
                XCTAssertEqual(memcmp(span.k! + offset, expectedK, cache.rowBytes), 0, "K at \(position), head \(head)")
                XCTAssertEqual(memcmp(span.v! + offset, expectedV, cache.rowBytes), 0, "V at \(position), head \(head)")
            }
        }
    }

    func testChunkLengthGrowsWithSizeUpToALimit() throws {
        // Bytes per position at Ouro-1.4B: q8_0/last 104,448 (1,024 x = 102 MiB), f16/last 196,608
        // (512 x = 96 MiB; 1,024 x would pass 128 MiB), q8_0/full 417,792 and f16/full 786,432 (a
        // 256-position chunk is already 102-192 MiB). The tiny fixtures (chunks far below 4 MiB)
        // keep 256 positions in plain memory.
        let expected: [(KVCacheType, KVSharing, Int)] = [(.q8_0, .last, 1024), (.f16, .last, 512), (.f32, .last, 256),
                                                          (.q8_0, .full, 256), (.f16, .full, 256)]
        for (type, sharing, positions) in expected {
            let cache = try KVCache(config: config, options: KVCacheOptions(type: type, sharing: sharing))
            XCTAssertEqual(cache.chunkPositions, positions, "\(type) \(sharing)")
            XCTAssertEqual(cache.hugePages, positions > 256, "\(type) \(sharing): huge pages only for chunks longer than 256")
        }
        // A short context limit keeps chunks no longer than it needs (a 102 MiB chunk for --ctx 300 would
        // hold 724 positions nobody may use).
        for (limit, positions) in [(300, 256), (512, 512), (700, 512), (4096, 1024)] {
            let cache = try KVCache(config: config, options: KVCacheOptions(type: .q8_0, sharing: .last, contextLimit: limit))
            XCTAssertEqual(cache.chunkPositions, positions, "--ctx \(limit)")
        }
        let tiny = OuroConfiguration(hiddenSize: 64, intermediateSize: 128, layerCount: 2, headCount: 4, kvHeadCount: 4,
                                     headDim: 16, vocabSize: 100, maxPositions: 4096)
        let small = try KVCache(config: tiny, options: .exact)
        XCTAssertEqual(small.chunkPositions, 256)
        XCTAssertFalse(small.hugePages)
    }

    /// Pages of `count` bytes at `start` (page-aligned) that are resident, by mincore.
    private func residentPages(_ start: UnsafeMutableRawPointer, _ count: Int) -> Int {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        var flags = [UInt8](repeating: 0, count: (count + page - 1) / page)
        XCTAssertEqual(mincore(start, count, &flags), 0)
        return flags.reduce(0) { $0 + Int($1 & 1) }
    }

    func testTheNextChunkIsFaultedInAheadAPieceAtATime() throws {
        #if os(Linux)
        // 4 layers: 17,408 bytes per position with q8_0/last, chunks of 1,024 positions (17.8 MB, 8.5 huge pages).
        let small = OuroConfiguration(hiddenSize: 2048, intermediateSize: 5632, layerCount: 4, headCount: 16,
                                      kvHeadCount: 16, headDim: 128, vocabSize: 49152, maxPositions: 4096)
        let cache = try KVCache(config: small, options: KVCacheOptions(type: .q8_0, sharing: .last))
        XCTAssertEqual(cache.chunkPositions, 1024)
        try cache.reserve(700)
        XCTAssertEqual(cache.capacity, 1024, "one chunk for 700 positions")
        cache.advance(by: 700)
        XCTAssertEqual(cache.capacity, 1024, "the next chunk comes only in the last quarter of this one")
        let bytes = cache.allocatedBytes, page = Int(sysconf(Int32(_SC_PAGESIZE)))
        XCTAssertEqual(residentPages(cache.row(0, 0, 0, 0), bytes), bytes / page, "the chunk being written is all faulted in")
        cache.advance(by: 68)   // 768 positions: 256 before the next chunk
        XCTAssertEqual(cache.capacity, 2048, "allocated a quarter chunk ahead")
        let next = cache.row(0, 0, 0, 1024)
        let first = residentPages(next, bytes)
        XCTAssertGreaterThan(first, 0, "a piece of it faulted in now")
        XCTAssertLessThan(first, bytes / page / 4, "not all of it at once")
        for _ in 768..<1000 { cache.advance(by: 1) }
        let later = residentPages(next, bytes)
        XCTAssertGreaterThan(later, first, "more of it token by token")
        for _ in 1000..<1024 { cache.advance(by: 1) }
        XCTAssertEqual(residentPages(next, bytes), bytes / page, "all of it before its first position is written")
        // Never past the limit: a cache limited to 1,024 positions allocates no second chunk.
        let limited = try KVCache(config: small, options: KVCacheOptions(type: .q8_0, sharing: .last, contextLimit: 1024))
        try limited.reserve(1024)
        limited.advance(by: 1000)
        XCTAssertEqual(limited.capacity, 1024)
        #endif
    }
}
