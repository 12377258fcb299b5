import CKernels
import XCTest
@testable import OuroModel

/// The cache's memory at the Ouro-1.4B attention shape (chunks of 26.7 MB with a q8_0 cache and last
/// sharing): rows written anywhere in a chunk (its first row, its last layer's rows at its end, the
/// next chunk's first) read back through the spans attention uses, byte for byte what ck_kv_store
/// makes of them.
final class KVCacheChunkTests: XCTestCase {
    private let config = OuroConfiguration(hiddenSize: 2048, intermediateSize: 5632, layerCount: 24, headCount: 16,
                                           kvHeadCount: 16, headDim: 128, vocabSize: 49152, maxPositions: 4096)

    func testLargeChunksHoldEveryRowWhereTheSpansPoint() throws {
        let cache = try KVCache(config: config, options: KVCacheOptions(type: .q8_0, sharing: .last))
        try cache.reserve(600)
        XCTAssertEqual(cache.capacity, 768)
        // 24 kept slots x (K, V) x 16 heads x 256 positions x 136 bytes per chunk.
        XCTAssertEqual(cache.allocatedBytes, 3 * 24 * 2 * 16 * 256 * 136)
        let width = config.kvHeadCount * config.headDim
        let positions = [0, 255, 256, 599]
        for (i, position) in positions.enumerated() {
            // The last layer's rows are the chunk's last bytes.
            let keys = (0..<width).map { Float(($0 * 7 + i * 13) % 23) - 11 }
            let values = (0..<width).map { Float(($0 * 5 + i * 3) % 19) - 9 }
            cache.store(step: config.loopCount - 1, layer: 23, keys: keys, values: values, tokens: 1, start: position)
            for head in [0, 15] {
                var expectedK = [UInt8](repeating: 0, count: cache.rowBytes), expectedV = expectedK
                ck_kv_store(Int32(CK_KV_Q8_0), Array(keys[head * 128 ..< head * 128 + 128]), 128, &expectedK)
                ck_kv_store(Int32(CK_KV_Q8_0), Array(values[head * 128 ..< head * 128 + 128]), 128, &expectedV)
                let spans = cache.spans(slot: 23, head: head, end: 600)
                XCTAssertEqual(spans.count, 3)
                let span = spans[position / 256]
                XCTAssertEqual(Int(span.first), position / 256 * 256)
                let offset = (position - Int(span.first)) * Int(span.stride)
                XCTAssertEqual(memcmp(span.k! + offset, expectedK, cache.rowBytes), 0, "K at \(position), head \(head)")
                XCTAssertEqual(memcmp(span.v! + offset, expectedV, cache.rowBytes), 0, "V at \(position), head \(head)")
            }
        }
    }
}
