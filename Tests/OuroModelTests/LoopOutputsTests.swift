import XCTest
@testable import OuroModel

final class LoopOutputsTests: XCTestCase {
    /// 2 tokens, 4 steps, vocab 2; step s has logits [s, -s] for token 0 and [10s, 1] for token 1.
    private func outputs(gates: [[Float]]) -> LoopOutputs {
        LoopOutputs(steps: 4, tokens: 2, vocab: 2, hidden: 1,
                    stepLogits: (0..<4).map { s in [Float(s), -Float(s), 10 * Float(s), 1] },
                    stepHidden: Array(repeating: [0, 0], count: 4), gateLogits: gates)
    }

    func testExitPDFFollowsRemainingMassFormula() {
        // gate 0 -> lambda 0.5: p = 0.5, 0.25, 0.125 and the remaining 0.125.
        let pdf = outputs(gates: Array(repeating: [0, 2], count: 4)).exitPDF()
        XCTAssertEqual(pdf[0], [0.5, 0.25, 0.125, 0.125])
        let l: Float = 1 / (1 + expf(-2))
        XCTAssertEqual(pdf[1][0], l, accuracy: 1e-7)
        XCTAssertEqual(pdf[1][1], l * (1 - l), accuracy: 1e-7)
        XCTAssertEqual(pdf[1][3], (1 - l) * (1 - l) * (1 - l), accuracy: 1e-7)
        XCTAssertEqual(pdf[1].reduce(0, +), 1, accuracy: 1e-6)
    }

    func testThresholdPicksFirstStepReachingCumulativeMass() {
        let out = outputs(gates: Array(repeating: [0, -10], count: 4))
        XCTAssertEqual(out.exitSteps(threshold: 0.5), [0, 3])
        XCTAssertEqual(out.exitSteps(threshold: 0.7), [1, 3])
        XCTAssertEqual(out.exitSteps(threshold: 1.0), [3, 3])
        XCTAssertEqual(out.logits(.threshold(0.7)), [1, -1, 30, 1])
    }

    func testLastStepAndStepSelection() {
        let out = outputs(gates: Array(repeating: [0, 0], count: 4))
        XCTAssertEqual(out.logits(.lastStep), [3, -3, 30, 1])
        XCTAssertEqual(out.logits(.step(2)), [2, -2, 20, 1])
        XCTAssertEqual(out.logits(.step(9)), [3, -3, 30, 1])   // ignored like upstream: last step
    }

    func testWeightedLogitsAreExpectationOverSteps() {
        let out = outputs(gates: Array(repeating: [0, 0], count: 4))
        // weights 0.5, 0.25, 0.125, 0.125 for both tokens
        let expected: [Float] = [0.25 + 0.25 + 0.375, -(0.25 + 0.25 + 0.375), 10 * (0.25 + 0.25 + 0.375), 1]
        XCTAssertEqual(out.logits(.weighted), expected)
    }

    func testDefaultExitModeFollowsConfiguredThreshold() throws {
        var config = try OuroConfiguration.load(folder: Fixtures.folder("ouro-tiny-a"))
        XCTAssertEqual(ExitMode.default(for: config), .threshold(1.0))
        config.earlyExitThreshold = nil
        XCTAssertEqual(ExitMode.default(for: config), .lastStep)
    }
}
