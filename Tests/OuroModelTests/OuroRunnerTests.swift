import OuroTestSupport
import XCTest
@testable import OuroModel

final class OuroRunnerTests: XCTestCase {
    private static let runner: OuroRunner = {
        try! OuroRunner(weights: OuroWeights.load(checkpoint: Fixtures.folder("ouro-tiny-b")))
    }()

    func testCachedDecodingStepMatchesUncachedLastPosition() throws {
        let runner = Self.runner
        let tokens = [3, 141, 59, 26, 535, 897, 9, 32, 384, 626]
        let full = try runner.forward(tokens: tokens)
        let cache = try KVCache(config: runner.config, options: .exact)
        try cache.reserve(tokens.count)
        let prefill = try Activations(config: runner.config, tokens: tokens.count - 1, context: tokens.count)
        _ = runner.run(tokens.dropLast(), cache: cache, activations: prefill, lastPositionOnly: true)
        let single = try Activations(config: runner.config, tokens: 1, context: tokens.count)
        let last = runner.run(tokens.suffix(1), cache: cache, activations: single, lastPositionOnly: true)
        let V = runner.config.vocabSize, T = tokens.count
        for s in 0..<full.steps {
            let expected = Array(full.stepLogits[s][(T - 1) * V ..< T * V])
            XCTAssertLessThan(ReferenceParity.maxAbsDiff(last.stepLogits[s], expected, "step \(s)"), 1e-4)
            XCTAssertEqual(last.gateLogits[s][0], full.gateLogits[s][T - 1], accuracy: 1e-5)
        }
    }

    /// A prompt run for its last position only skips the other rows' o/MLP products in the last
    /// layer of the last step; its logits, states and gates still equal the full forward's last row
    /// at every step, and the K/V it files serve the next token as the full run's would.
    func testLastPositionPrefillMatchesFullForwardAtEveryStep() throws {
        let runner = Self.runner
        let tokens = [3, 141, 59, 26, 535, 897, 9, 32, 384, 626, 17]
        let full = try runner.forward(tokens: tokens)
        let cache = try KVCache(config: runner.config, options: .exact)
        try cache.reserve(tokens.count + 1)
        let prefill = try Activations(config: runner.config, tokens: tokens.count, context: tokens.count + 1)
        let last = runner.run(tokens[...], cache: cache, activations: prefill, lastPositionOnly: true)
        let V = runner.config.vocabSize, H = runner.config.hiddenSize, T = tokens.count
        for s in 0..<full.steps {
            XCTAssertLessThan(ReferenceParity.maxAbsDiff(last.stepLogits[s], Array(full.stepLogits[s][(T - 1) * V ..< T * V]), "step \(s)"), 1e-4)
            XCTAssertLessThan(ReferenceParity.maxAbsDiff(last.stepHidden[s], Array(full.stepHidden[s][(T - 1) * H ..< T * H]), "state \(s)"), 1e-4)
            XCTAssertEqual(last.gateLogits[s][0], full.gateLogits[s][T - 1], accuracy: 1e-5)
        }
        let next = [71]
        let reference = try runner.forward(tokens: tokens + next)
        let single = try Activations(config: runner.config, tokens: 1, context: tokens.count + 1)
        let decoded = runner.run(next[...], cache: cache, activations: single, lastPositionOnly: true)
        for s in 0..<full.steps {
            XCTAssertLessThan(ReferenceParity.maxAbsDiff(decoded.stepLogits[s], Array(reference.stepLogits[s][T * V ..< (T + 1) * V]), "next \(s)"), 1e-4)
        }
    }

    func testPrefixPositionsDoNotSeeLaterTokens() throws {
        // Causality: the first 4 positions' outputs do not depend on what follows them.
        let runner = Self.runner
        let a = try runner.forward(tokens: [1, 2, 3, 4, 5, 6])
        let b = try runner.forward(tokens: [1, 2, 3, 4, 900, 800, 700])
        let n = 4 * runner.config.vocabSize
        XCTAssertLessThan(ReferenceParity.maxAbsDiff(Array(a.stepLogits[3][..<n]), Array(b.stepLogits[3][..<n]), "prefix"), 1e-5)
    }

    func testGenerationAgreesCachedAndUncachedForEveryExitMode() throws {
        let runner = Self.runner
        for mode in [ExitMode.lastStep, .step(0), .threshold(0.5), .weighted] {
            let cached = try runner.generate(prompt: [7, 8, 9], maxNewTokens: 6, cached: true, exit: mode)
            let uncached = try runner.generate(prompt: [7, 8, 9], maxNewTokens: 6, cached: false, exit: mode)
            XCTAssertEqual(cached, uncached, "\(mode)")
            XCTAssertEqual(cached.count, 6)
        }
    }

    func testGenerationStopsAtStopToken() throws {
        let runner = Self.runner
        let free = try runner.generate(prompt: [7, 8, 9], maxNewTokens: 6)
        let stopped = try runner.generate(prompt: [7, 8, 9], maxNewTokens: 6, stopTokens: [free[2]])
        XCTAssertEqual(stopped, Array(free[...(free.firstIndex(of: free[2])!)]))
    }

    func testRejectsBadRequests() throws {
        let runner = Self.runner
        XCTAssertThrowsError(try runner.forward(tokens: [])) { XCTAssertEqual($0 as? ModelError, .invalidRequest("no tokens to run")) }
        XCTAssertThrowsError(try runner.forward(tokens: [1, 1000])) { XCTAssertEqual($0 as? ModelError, .tokenOutOfRange(token: 1000, vocab: 1000)) }
        XCTAssertThrowsError(try runner.generate(prompt: [-1], maxNewTokens: 1))
        XCTAssertThrowsError(try runner.generate(prompt: [1], maxNewTokens: 1, exit: .step(4)))
        XCTAssertThrowsError(try runner.generate(prompt: [1], maxNewTokens: Int.max))
        XCTAssertEqual(try runner.generate(prompt: [1], maxNewTokens: 0), [])
    }
}
