import OuroTestSupport
import XCTest
@testable import OuroModel

/// Early exit under `--kv-share last|mean`: the kept K/V of an exited position is its exit step's
/// (last) or the mean over every step with the deeper ones counted as the exit step's (mean), which
/// is what full sharing's copy puts in the deeper slots.
final class EarlyExitSharingTests: XCTestCase {
    func testAnExitedPositionKeepsItsExitStepsKV() throws {
        let runner = OuroRunner(weights: try OuroWeights.load(checkpoint: Fixtures.folder("ouro-trained-s")))
        let S = runner.config.loopCount, L = runner.config.layerCount
        func session(_ sharing: KVSharing) throws -> OuroSession {
            let session = try OuroSession(runner: runner, exit: .threshold(0.5), kv: KVCacheOptions(type: .f32, sharing: sharing))
            session.earlyExit = true
            return session
        }
        // Position 0 attends only to itself, so its K/V at each step is the same under every sharing
        // mode: the full-sharing cache (exit step copied deeper) is the independent reference.
        var exitedEarly = 0
        for token in [35, 105, 120, 119, 49, 118, 104, 3, 141, 59] {
            let full = try session(.full), last = try session(.last), mean = try session(.mean)
            let logits = try full.append([token])
            XCTAssertEqual(try last.append([token]), logits, "token \(token): position 0's logits under last sharing")
            XCTAssertEqual(try mean.append([token]), logits, "token \(token): position 0's logits under mean sharing")
            let steps = full.decodeLoopSteps
            XCTAssertEqual(last.decodeLoopSteps, steps)
            XCTAssertEqual(mean.decodeLoopSteps, steps)
            XCTAssertLessThanOrEqual(steps, S)
            if steps < S { exitedEarly += 1 }
            for layer in 0..<L {
                for kv in 0..<2 {
                    let exitRow = full.cache.storedRow((steps - 1) * L + layer, kv, 0)
                    XCTAssertEqual(last.cache.storedRow(layer, kv, 0), exitRow, "token \(token) layer \(layer): last keeps the exit step's")
                    let perStep = (0..<S).map { floats(full.cache.storedRow($0 * L + layer, kv, 0)) }
                    let expected = (0..<perStep[0].count).map { i in perStep.reduce(Float(0)) { $0 + $1[i] } / Float(S) }
                    let kept = floats(mean.cache.storedRow(layer, kv, 0))
                    for (a, b) in zip(kept, expected) {
                        XCTAssertEqual(a, b, accuracy: 1e-5 * max(1, abs(b)), "token \(token) layer \(layer): mean with deeper steps as the exit step")
                    }
                }
            }
            // The next token runs on the kept K/V; its steps stay within the loop count.
            _ = try last.append([7])
            _ = try mean.append([7])
            XCTAssertLessThanOrEqual(last.decodeLoopSteps, steps + S)
            XCTAssertLessThanOrEqual(mean.decodeLoopSteps, steps + S)
        }
        XCTAssertGreaterThan(exitedEarly, 0, "some token must exit before the last step for this test to mean anything")
    }

    private func floats(_ bytes: [UInt8]) -> [Float] {
        bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }
}
