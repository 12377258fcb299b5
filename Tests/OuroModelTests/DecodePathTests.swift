import OuroTestSupport
import XCTest
@testable import OuroModel

/// The decode path (prefill, then one token at a time through the KV cache) against the full
/// forward pass, for every fixture, cache type and sharing mode.
final class DecodePathTests: XCTestCase {
    private static let runners: [(String, OuroRunner)] = ["ouro-tiny-a", "ouro-tiny-b", "ouro-trained-s"].map {
        ($0, try! OuroRunner(weights: OuroWeights.load(checkpoint: Fixtures.folder($0))))
    }

    private func tokens(_ runner: OuroRunner, count: Int) -> [Int] {
        (0..<count).map { (5 + $0 * 37) % runner.config.vocabSize }
    }

    private func maxDifference(_ a: LoopOutputs, _ b: LoopOutputs, positions: Range<Int>) -> Float {
        let V = a.vocab
        var worst: Float = 0
        for s in 0..<a.steps {
            for i in positions.lowerBound * V..<positions.upperBound * V {
                worst = max(worst, abs(a.stepLogits[s][i] - b.stepLogits[s][i]))
            }
        }
        return worst
    }

    func testExactCacheDecodePathEqualsTheFullForwardAtEveryPositionAndStep() throws {
        // tiny-b (grouped kv heads) with 300 tokens: the cache spans two chunks; 80 elsewhere still
        // crosses the attention's 64-position key blocks and 64-row tiles.
        for (name, runner) in Self.runners {
            let input = tokens(runner, count: name == "ouro-tiny-b" ? 300 : 80)
            let full = try runner.forward(tokens: input)
            let decoded = try runner.decodePath(tokens: input, prefill: 3, kv: .exact)
            XCTAssertEqual(decoded.tokens, input.count)
            XCTAssertLessThan(maxDifference(full, decoded, positions: 0..<input.count), 2e-4, name)
            for s in 0..<full.steps {
                for t in 0..<input.count {
                    XCTAssertEqual(full.gateLogits[s][t], decoded.gateLogits[s][t], accuracy: 1e-4, "\(name) step \(s) position \(t)")
                }
            }
        }
    }

    func testEveryTypeAndModeEqualsTheFullForwardWherePositionsNeverReadTheCache() throws {
        // A prompt run in one call attends only to its own f32 K/V, whatever the cache keeps.
        for (name, runner) in Self.runners {
            let input = tokens(runner, count: 40)
            let full = try runner.forward(tokens: input)
            for type in KVCacheType.allCases where type != .q8_0 || runner.config.headDim % 32 == 0 {
                for sharing in KVSharing.allCases {
                    let options = KVCacheOptions(type: type, sharing: sharing)
                    let once = try runner.decodePath(tokens: input, prefill: input.count, kv: options)
                    XCTAssertLessThan(maxDifference(full, once, positions: 0..<input.count), 1e-4, "\(name) \(type) \(sharing)")
                }
            }
        }
    }

    func testRoundedAndSharedCachesStayCloseAndFullSharingIsUnchangedByTheType() throws {
        let (name, runner) = Self.runners[2]          // trained weights: meaningful distributions
        let input = tokens(runner, count: 64)
        let full = try runner.forward(tokens: input)
        let exact = try runner.decodePath(tokens: input, prefill: 4, kv: .exact)
        for type in [KVCacheType.f16, .q8_0] {
            let rounded = try runner.decodePath(tokens: input, prefill: 4, kv: KVCacheOptions(type: type))
            let difference = maxDifference(exact, rounded, positions: 4..<input.count)
            XCTAssertGreaterThan(difference, 0, "\(name) \(type): the rounding is visible")
            XCTAssertLessThan(difference, type == .f16 ? 0.02 : 0.2, "\(name) \(type)")
        }
        // Shared K/V changes what later positions see (the prefill positions stay exact).
        for sharing in [KVSharing.last, .mean] {
            let shared = try runner.decodePath(tokens: input, prefill: 4, kv: KVCacheOptions(type: .f32, sharing: sharing))
            XCTAssertLessThan(maxDifference(full, shared, positions: 0..<4), 1e-4)
            XCTAssertGreaterThan(maxDifference(full, shared, positions: 4..<input.count), 1e-3, "\(sharing) is not full sharing")
            XCTAssertTrue(shared.stepLogits.allSatisfy { $0.allSatisfy(\.isFinite) })
        }
    }

    func testAContextPastTheLimitIsRefusedWithOneLine() throws {
        let runner = Self.runners[0].1
        let session = try OuroSession(runner: runner, kv: KVCacheOptions(contextLimit: 8))
        _ = try session.append([1, 2, 3, 4, 5, 6])
        XCTAssertEqual(session.remainingPositions, 2)
        XCTAssertThrowsError(try session.append([7, 8, 9])) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("9 positions exceed the context limit of 8 (--ctx)"), text)
            XCTAssertFalse(text.contains("\n"))
        }
        XCTAssertEqual(session.tokens.count, 6, "a refused append leaves the session as it was")
        _ = try session.append([7, 8])
        let beyondModel = runner.config.maxPositions + 1
        XCTAssertThrowsError(try OuroSession(runner: runner, kv: KVCacheOptions(contextLimit: beyondModel))) { error in
            XCTAssertTrue("\(error)".contains("max_position_embeddings"), "\(error)")
        }
        XCTAssertThrowsError(try OuroSession(runner: runner, kv: KVCacheOptions(type: .q8_0))) { error in
            XCTAssertTrue("\(error)".contains("head_dim"), "\(error)")   // tiny-a: head_dim 16
        }
    }

    func testTruncationAndStepCopiesAreCheapCacheOperations() throws {
        let config = Self.runners[2].1.config
        let cache = try KVCache(config: config, options: KVCacheOptions(type: .f16))
        // Past the first chunk, whatever its length (this fixture's f16 cache is large enough for long chunks).
        let chunk = cache.chunkPositions, at = chunk + 4
        try cache.reserve(chunk + 44)
        XCTAssertEqual(cache.capacity, 2 * chunk, "chunks as positions arrive")
        let width = config.kvHeadCount * config.headDim
        let keys = (0..<width).map { Float($0 % 7) }, values = (0..<width).map { Float($0 % 5) }
        cache.store(step: 1, layer: 0, keys: keys, values: values, tokens: 1, start: at)
        cache.copyStep(1, toDeeperStepsAt: at)
        for deeper in 2..<config.loopCount {
            let slot = cache.keptSlot(step: deeper, layer: 0)
            XCTAssertEqual(memcmp(cache.row(slot, 0, 1, at), cache.row(cache.keptSlot(step: 1, layer: 0), 0, 1, at), cache.rowBytes), 0)
            XCTAssertEqual(memcmp(cache.row(slot, 1, 0, at), cache.row(cache.keptSlot(step: 1, layer: 0), 1, 0, at), cache.rowBytes), 0)
        }
        cache.advance(by: at + 1)
        cache.truncate(to: 10)
        XCTAssertEqual(cache.length, 10)
        XCTAssertEqual(cache.capacity, 2 * chunk, "truncation keeps the memory")
    }

    func testBytesPerPositionForEveryTypeAndMode() {
        // Rows of head_dim elements: f32 4 bytes each, f16 2, q8_0 34 per 32.
        let config = Self.runners[2].1.config
        let perRow = ["f32": 4 * config.headDim, "f16": 2 * config.headDim, "q8_0": config.headDim / 32 * 34]
        for type in KVCacheType.allCases {
            for sharing in KVSharing.allCases {
                let slots = sharing == .full ? config.loopCount * config.layerCount : config.layerCount
                XCTAssertEqual(KVCacheOptions(type: type, sharing: sharing).bytesPerPosition(for: config),
                               slots * 2 * config.kvHeadCount * perRow[type.rawValue]!)
            }
        }
    }
}
