import Foundation
import XCTest
@testable import OuroValidation

final class ParityMetricsTests: XCTestCase {
    /// p = softmax([0, ln 3]) = (1/4, 3/4), q = softmax([0, 0]) = (1/2, 1/2):
    /// KL(p||q) = 1/4 ln(1/2) + 3/4 ln(3/2).
    func testKLOfTwoKnownDistributions() {
        let expected = 0.25 * log(0.5) + 0.75 * log(1.5)   // 0.130812...
        let kl = ParityMetrics.klDivergence(reference: [0, Float(log(3.0))], model: [0, 0])
        XCTAssertEqual(kl, expected, accuracy: 1e-7)
        XCTAssertEqual(kl, 0.1308121, accuracy: 1e-6)
    }

    func testKLIsShiftInvariantAndStableForHugeLogits() {
        let shifted = ParityMetrics.klDivergence(reference: [1000, 1000 + Float(log(3.0))], model: [-500, -500])
        XCTAssertEqual(shifted, 0.25 * log(0.5) + 0.75 * log(1.5), accuracy: 1e-4)   // float32 spacing at 1000 is 6e-5
        XCTAssertTrue(shifted.isFinite)
    }

    func testKLOfIdenticalRowsIsZero() {
        let row: [Float] = [0.3, -2, 5, 1.5]
        XCTAssertEqual(ParityMetrics.klDivergence(reference: row[...], model: row[...]), 0)
    }

    func testKLIgnoresZeroProbabilityReferenceEntries() {
        // The reference puts no mass on index 0, so the model's value there does not matter.
        let kl = ParityMetrics.klDivergence(reference: [-.infinity, 0, 0], model: [9, 0, 0])
        let q = exp(0.0) / (exp(9.0) + 2)
        XCTAssertEqual(kl, 2 * 0.5 * log(0.5 / q), accuracy: 1e-9)
    }

    func testLogSoftmaxOfUniformRow() {
        let logp = ParityMetrics.logSoftmax([2, 2, 2, 2][...])
        for v in logp { XCTAssertEqual(v, -log(4.0), accuracy: 1e-12) }
    }

    func testPercentileIsNearestRank() {
        let hundred = (1...100).map(Double.init)
        XCTAssertEqual(ParityMetrics.percentile(hundred, 0.99), 99)
        XCTAssertEqual(ParityMetrics.percentile(hundred.shuffled(), 0.5), 50)
        XCTAssertEqual(ParityMetrics.percentile((1...10).map(Double.init), 0.99), 10)   // ceil(9.9) = 10th
        XCTAssertEqual(ParityMetrics.percentile([7], 0.99), 7)
        XCTAssertEqual(ParityMetrics.percentile([], 0.99), 0)
    }

    func testArgmaxTakesFirstOnTiesAndTop1CountsRows() {
        XCTAssertEqual(ParityMetrics.argmax([1, 3, 3, 2][...]), 1)
        XCTAssertEqual(ParityMetrics.argmax([Float.nan, .nan][...]), -1)
        // rows: [0,1] argmax 1 vs 1; [5,4] argmax 0 vs 1; [2,2] argmax 0 vs 0
        let reference: [Float] = [0, 1, 5, 4, 2, 2]
        let model: [Float] = [0, 2, 3, 4, 1, 1]
        XCTAssertEqual(ParityMetrics.top1Matches(reference: reference, model: model, rows: 3, width: 2), 2)
    }

    func testMaxAbsAndRelativeRMS() {
        let ref: [Float] = [3, 4]          // norm 5
        let model: [Float] = [3, 4.5]      // diff (0, 0.5)
        XCTAssertEqual(ParityMetrics.maxAbsError(model, ref), 0.5)
        XCTAssertEqual(ParityMetrics.relativeRMSError(model: model, reference: ref), 0.1, accuracy: 1e-12)
        XCTAssertEqual(ParityMetrics.maxAbsError([.nan], [0]), .infinity)
    }

    func testCrossEntropySkipsNegativeLabels() {
        // Uniform over 4 -> ln 4 per scored label; the -100 row is skipped.
        let ce = ParityMetrics.crossEntropy(logits: [Float](repeating: 1, count: 12), labels: [0, -100, 3], width: 4)
        XCTAssertEqual(ce.count, 2)
        XCTAssertEqual(ce.sum, 2 * log(4.0), accuracy: 1e-12)
    }

    func testComparisonAggregatesOverPrompts() {
        var c = LogitComparison()
        // prompt 1: one row, KL = hand value above, top-1 differs (argmax 1 vs 0)
        c.add(model: [0, 0], reference: [0, Float(log(3.0))], tokens: 1, vocab: 2)
        // prompt 2: identical rows
        c.add(model: [1, 0, 2, 0], reference: [1, 0, 2, 0], tokens: 2, vocab: 2)
        let s = c.summary
        let kl = 0.25 * log(0.5) + 0.75 * log(1.5)
        XCTAssertEqual(s.positions, 3)
        XCTAssertEqual(s.kldMean, kl / 3, accuracy: 1e-7)
        XCTAssertEqual(s.kldMax, kl, accuracy: 1e-7)
        XCTAssertEqual(s.kldP99, kl, accuracy: 1e-7)
        XCTAssertEqual(s.top1Agreement, 2.0 / 3.0, accuracy: 1e-12)
        XCTAssertEqual(s.maxAbsLogitError, log(3.0), accuracy: 1e-6)
    }
}
