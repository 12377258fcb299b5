import OuroTestSupport
import XCTest
@testable import OuroModel

final class OuroSessionTests: XCTestCase {
    private static let runner: OuroRunner = {
        try! OuroRunner(weights: OuroWeights.load(checkpoint: Fixtures.folder("ouro-tiny-b")))
    }()

    private func lastLogits(_ tokens: [Int]) throws -> [Float] {
        let full = try Self.runner.forward(tokens: tokens)
        let V = Self.runner.config.vocabSize
        return Array(full.stepLogits[full.steps - 1][(tokens.count - 1) * V ..< tokens.count * V])
    }

    func testAppendingTurnsGivesTheLogitsOfRunningEverythingAtOnce() throws {
        // An f32 cache: the same numbers as the full forward, up to summation order.
        let session = try OuroSession(runner: Self.runner, exit: .lastStep, kv: .exact, initialCapacity: 2)
        let turns = [[3, 141, 59], [26], [535, 897, 9, 32]]
        var all: [Int] = []
        for turn in turns {
            let logits = try session.append(turn)
            all += turn
            XCTAssertEqual(session.tokens, all)
            XCTAssertLessThan(ReferenceParity.maxAbsDiff(logits, try lastLogits(all), "after \(all)"), 1e-4)
        }
    }

    func testLongAppendsRunInChunksWithTheSameResult() throws {
        let prompt = [3, 141, 59, 26, 535, 897, 9, 32]
        let session = try OuroSession(runner: Self.runner, exit: .lastStep, kv: .exact, initialCapacity: 4, prefillChunk: 3)
        XCTAssertLessThan(ReferenceParity.maxAbsDiff(try session.append(prompt), try lastLogits(prompt), "chunks of 3"), 1e-4)
        XCTAssertEqual(session.tokens, prompt)
    }

    func testTruncateThenAppendMatchesTheNewContext() throws {
        let session = try OuroSession(runner: Self.runner, exit: .lastStep, kv: .exact)
        _ = try session.append([3, 141, 59, 26, 535])
        try session.truncate(to: 2)
        XCTAssertEqual(session.tokens, [3, 141])
        let logits = try session.append([700, 9])
        XCTAssertLessThan(ReferenceParity.maxAbsDiff(logits, try lastLogits([3, 141, 700, 9]), "truncated"), 1e-4)
        session.reset()
        XCTAssertEqual(session.tokens, [])
        XCTAssertLessThan(ReferenceParity.maxAbsDiff(try session.append([5, 6]), try lastLogits([5, 6]), "reset"), 1e-4)
    }

    func testGreedyDecodingThroughTheSessionEqualsGenerate() throws {
        let runner = Self.runner
        let expected = try runner.generate(prompt: [7, 8, 9], maxNewTokens: 6, exit: .weighted)
        let session = try OuroSession(runner: runner, exit: .weighted)
        var logits = try session.append([7, 8, 9])
        var generated: [Int] = []
        var sampler = Sampler(SamplingOptions())
        while generated.count < 6 {
            generated.append(sampler.next(logits))
            if generated.count < 6 { logits = try session.append([generated.last!]) }
        }
        XCTAssertEqual(generated, expected)
    }

    func testBadRequestsAreErrors() throws {
        let session = try OuroSession(runner: Self.runner)
        XCTAssertThrowsError(try session.append([]))
        XCTAssertThrowsError(try session.append([Self.runner.config.vocabSize]))
        XCTAssertThrowsError(try OuroSession(runner: Self.runner, exit: .step(99)))
        XCTAssertThrowsError(try session.append([Int](repeating: 1, count: Self.runner.config.maxPositions + 1)))
        XCTAssertEqual(session.tokens, [])
    }
}
