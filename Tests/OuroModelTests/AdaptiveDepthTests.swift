import OuroTestSupport
import XCTest
@testable import OuroModel

/// Counts the output-head products a forward call makes (the rows it is given).
private final class HeadCounter: ActivationObserver {
    var calls = 0
    func observe(_ site: LinearInput, layer: Int?, rows: UnsafePointer<Float>, count: Int, columns: Int) {
        if case .output = site { calls += 1 }
    }
}

final class AdaptiveDepthTests: XCTestCase {
    private static let runners: [String: OuroRunner] = Dictionary(uniqueKeysWithValues: Fixtures.all.map {
        ($0, try! OuroRunner(weights: OuroWeights.load(checkpoint: Fixtures.folder($0))))
    })
    private let prompt = [3, 141, 59, 26, 35, 97, 9, 32]

    /// One cached call over `tokens` at a fresh cache.
    private func lastPosition(_ runner: OuroRunner, _ tokens: [Int], _ selection: LogitSelection,
                              depth: LoopDepth = .full) throws -> (LoopOutputs, KVCache) {
        let cache = try KVCache(config: runner.config, options: .exact)
        try cache.reserve(tokens.count + 4)
        let a = try runner.makeActivations(tokens: tokens.count, context: tokens.count + 4)
        return (runner.run(tokens[...], cache: cache, activations: a, lastPositionOnly: true, logits: selection, depth: depth), cache)
    }

    func testHeadOnlyWhereNeededGivesTheFullComputationsLogits() throws {
        for name in Fixtures.all {
            let runner = Self.runners[name]!
            let S = runner.config.loopCount
            // Under an observer as the runs below (an observer sees every row of every layer, so the
            // last layer keeps all rows: the same products as below, bit for bit).
            runner.activationObserver = HeadCounter()
            let (full, _) = try lastPosition(runner, prompt, .everyStep)
            runner.activationObserver = nil
            XCTAssertTrue(full.stepLogits.allSatisfy { $0.count == runner.config.vocabSize })
            let exitStep = full.exitSteps(threshold: 0.5)[0]
            let expectedHeads: [(ExitMode, Int)] = [(.lastStep, 1), (.step(1), 1), (.step(9), 1), (.threshold(0.5), 1),
                                                     (.threshold(1.0), 1), (.weighted, S)]
            for (mode, heads) in expectedHeads {
                let counter = HeadCounter()
                runner.activationObserver = counter
                defer { runner.activationObserver = nil }
                let (only, _) = try lastPosition(runner, prompt, .exit(mode))
                XCTAssertEqual(only.logits(mode), full.logits(mode), "\(name) \(mode)")
                XCTAssertEqual(counter.calls, heads, "\(name) \(mode): head products")
                XCTAssertEqual(only.gateLogits, full.gateLogits, "\(name) \(mode): the gate runs every step")
                if case .threshold(0.5) = mode {
                    // The one step with logits is the exit step LoopOutputs picks from all gates.
                    XCTAssertEqual(only.logits(mode), full.stepLogits[exitStep], name)
                }
            }
        }
    }

    func testEarlyExitStopsAtTheExitStepAndCopiesItsKVDeeper() throws {
        for name in Fixtures.all {
            let runner = Self.runners[name]!
            let S = runner.config.loopCount, L = runner.config.layerCount
            for q: Float in [0.05, 0.5, 1.0] {
                // Prompt at full depth, then one decoded token that may exit early.
                let (_, cache) = try lastPosition(runner, prompt, .exit(.threshold(q)), depth: .earlyExit)
                XCTAssertEqual(cache.length, prompt.count)
                let single = try runner.makeActivations(tokens: 1, context: cache.capacity)
                let fullCache = try cache.snapshot(config: runner.config)
                try fullCache.reserve(cache.capacity)
                let reference = runner.run([7][...], cache: fullCache, activations: single, lastPositionOnly: true)
                let exitStep = reference.exitSteps(threshold: q)[0]
                let early = runner.run([7][...], cache: cache, activations: single, lastPositionOnly: true,
                                       logits: .exit(.threshold(q)), depth: .earlyExit)
                XCTAssertEqual(early.executedSteps, exitStep + 1, "\(name) q=\(q)")
                XCTAssertLessThanOrEqual(early.executedSteps, S)
                XCTAssertEqual(early.logits(.threshold(q)), reference.stepLogits[exitStep], "\(name) q=\(q)")
                let p = prompt.count
                for layer in 0..<L {
                    let exitSlot = exitStep * L + layer
                    let exitKey = cache.storedRow(exitSlot, 0, p)
                    XCTAssertEqual(exitKey, fullCache.storedRow(exitSlot, 0, p))
                    for step in exitStep + 1 ..< S {
                        let slot = step * L + layer
                        XCTAssertEqual(cache.storedRow(slot, 0, p), exitKey)
                        XCTAssertEqual(cache.storedRow(slot, 1, p), cache.storedRow(exitSlot, 1, p))
                    }
                }
            }
        }
    }

    func testSessionEarlyExitNeverRunsMoreStepsThanTheLoopCount() throws {
        for name in Fixtures.all {
            let runner = Self.runners[name]!
            let session = try OuroSession(runner: runner, exit: .threshold(0.5))
            session.earlyExit = true
            var logits = try session.append(prompt)
            for _ in 0..<12 {
                logits = try session.append([OuroRunner.argmax(logits)])
            }
            XCTAssertEqual(session.decodedTokens, 12)
            XCTAssertGreaterThanOrEqual(session.decodeLoopSteps, 12)
            XCTAssertLessThanOrEqual(session.decodeLoopSteps, 12 * runner.config.loopCount, name)
        }
    }
}
