import Foundation
import OuroTestSupport
import XCTest
@testable import OuroModel

/// Early exit's approximation on the trained fixture, teacher-forced along the full-depth greedy
/// path: top-1 agreement and KL(full ‖ early) of the threshold logits per generated position.
/// Slow (192 tokens per prompt); runs only with OURO_MEASURE_DEPTH=1 and prints its figures.
final class AdaptiveDepthMeasurementTests: XCTestCase {
    func testEarlyExitAgreementAndKLDOnHeldOutText() throws {
        guard ProcessInfo.processInfo.environment["OURO_MEASURE_DEPTH"] == "1" else {
            throw XCTSkip("set OURO_MEASURE_DEPTH=1 to measure")
        }
        let text = try String(contentsOfFile: Fixtures.root + "/../../Docs/calibration/trained-s-heldout.txt", encoding: .utf8)
        let ids = text.split(whereSeparator: { $0 == "," || $0.isNewline }).compactMap { Int($0) }
        let runner = OuroRunner(weights: try OuroWeights.load(checkpoint: Fixtures.folder("ouro-trained-s")))
        let prompts = Int(ProcessInfo.processInfo.environment["OURO_MEASURE_PROMPTS"] ?? "2") ?? 2
        let q = Float(ProcessInfo.processInfo.environment["OURO_MEASURE_THRESHOLD"] ?? "0.5") ?? 0.5
        var agree = 0, total = 0, steps = 0
        var klds: [Double] = []
        for p in 0..<prompts {
            let prompt = Array(ids[(p * 1000) ..< (p * 1000 + 64)])
            let full = try OuroSession(runner: runner, exit: .threshold(q))
            let early = try OuroSession(runner: runner, exit: .threshold(q))
            early.earlyExit = true
            var fullLogits = try full.append(prompt)
            var earlyLogits = try early.append(prompt)
            for _ in 0..<192 {
                let next = OuroRunner.argmax(fullLogits)
                agree += OuroRunner.argmax(earlyLogits) == next ? 1 : 0
                total += 1
                klds.append(Self.kld(fullLogits, earlyLogits))
                fullLogits = try full.append([next])
                earlyLogits = try early.append([next])
            }
            steps += early.decodeLoopSteps
        }
        let meanKLD = klds.reduce(0, +) / Double(klds.count)
        let sorted = klds.sorted()
        print(String(format: "EARLY-EXIT q=%.2f positions %d: mean loop steps %.3f, top-1 agreement %.4f, KLD mean %.5f median %.5f p95 %.5f",
                     q, total, Double(steps) / Double(total), Double(agree) / Double(total), meanKLD,
                     sorted[sorted.count / 2], sorted[sorted.count * 95 / 100]))
        XCTAssertLessThanOrEqual(steps, total * runner.config.loopCount)
        XCTAssertTrue(meanKLD.isFinite)
    }

    /// KL(p ‖ q) of the softmaxes of two logit rows, in nats.
    static func kld(_ p: [Float], _ q: [Float]) -> Double {
        func logSoftmax(_ x: [Float]) -> [Double] {
            let m = Double(x.max()!)
            let s = log(x.reduce(0) { $0 + exp(Double($1) - m) })
            return x.map { Double($0) - m - s }
        }
        let lp = logSoftmax(p), lq = logSoftmax(q)
        return zip(lp, lq).reduce(0) { $0 + exp($1.0) * ($1.0 - $1.1) }
    }
}
