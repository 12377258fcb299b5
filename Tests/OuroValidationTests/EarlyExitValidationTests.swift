import Foundation
import XCTest
@testable import OuroModel
@testable import OuroValidation

/// `validate --decode-path --early-exit threshold:Q` on the trained fixture: the numbers it reports
/// against full depth, checked where they are known independently.
final class EarlyExitValidationTests: XCTestCase {
    private static let prefill = 8

    private func report(threshold: Float, weights: OuroWeights, in dir: URL) throws -> (ValidationReport, ReferenceBundle) {
        let bundle = try ReferenceBundle(path: try TestSupport.subsetBundle("ouro-trained-s", prompts: [0], in: dir))
        var validator = Validator(weights: weights)
        validator.decodePrefill = Self.prefill
        validator.earlyExitThreshold = threshold
        return (try validator.validate(bundle: bundle), bundle)
    }

    func testAnExitThatNeverTriggersGivesTheFullDepthLogitsExactly() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let weights = try OuroWeights.load(checkpoint: TestSupport.fixture("ouro-trained-s"))
        // The cumulative exit probability never reaches 2: every position runs every step.
        let (report, bundle) = try report(threshold: 2, weights: weights, in: dir)
        let e = try XCTUnwrap(report.decodePath?.earlyExit)
        let S = weights.config.loopCount
        XCTAssertEqual(e.positions, bundle.tokenCount - Self.prefill)
        XCTAssertEqual(e.meanLoopSteps, Double(S))
        XCTAssertEqual(e.maxLoopSteps, S)
        XCTAssertEqual(e.loopCount, S)
        // The same arithmetic as the full-depth decode path: bit for bit the last step's logits.
        XCTAssertEqual(e.vsThresholdFullDepth.maxAbsLogitError, 0)
        XCTAssertEqual(e.vsThresholdFullDepth.kldMax, 0)
        XCTAssertEqual(e.vsThresholdFullDepth.top1Agreement, 1)
        print(ReportText.render(report))
    }

    func testThresholdZeroExitsAfterStepOneAndMatchesAModelTruncatedToOneStep() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let weights = try OuroWeights.load(checkpoint: TestSupport.fixture("ouro-trained-s"))
        let (report, bundle) = try report(threshold: 0, weights: weights, in: dir)
        let e = try XCTUnwrap(report.decodePath?.earlyExit)
        XCTAssertEqual(e.meanLoopSteps, 1)
        XCTAssertEqual(e.maxLoopSteps, 1)

        // Independently: the same weights with a loop count of 1, run as one uncached forward pass,
        // against the full model's uncached final logits in its default exit mode (what the report
        // calls full depth).
        var oneStep = weights.config
        oneStep.loopCount = 1
        let truncated = OuroRunner(weights: OuroWeights(config: oneStep, source: weights.source,
                                                        tensors: weights.tensorsByName, storesSourceExactly: true))
        let inputs = try bundle.load(bundle.prompts[0]).inputIDs
        let full = try OuroRunner(weights: weights).forward(tokens: inputs)
        let fullLogits = full.logits(ExitMode.default(for: weights.config))
        let truncatedLogits = try truncated.forward(tokens: inputs).logits(.lastStep)
        let V = weights.config.vocabSize, T = inputs.count, n = T - Self.prefill
        let tail = { (logits: [Float]) in Array(logits[(Self.prefill * V)...]) }
        let kl = ParityMetrics.rowKL(reference: tail(fullLogits), model: tail(truncatedLogits), rows: n, width: V)
        let expectedMean = kl.reduce(0, +) / Double(n)
        XCTAssertGreaterThan(expectedMean, 0.01, "step 1 is visibly not the full model")
        XCTAssertEqual(e.vsFullDepth.kldMean, expectedMean, accuracy: expectedMean * 1e-3)
        let matches = ParityMetrics.top1Matches(reference: tail(fullLogits), model: tail(truncatedLogits), rows: n, width: V)
        XCTAssertEqual(e.vsFullDepth.top1Agreement * Double(n), Double(matches), accuracy: 1.5)
        XCTAssertLessThan(e.vsFullDepth.top1Agreement, 1)

        // The early-exit logits themselves are the truncated model's (decode path vs one forward:
        // float summation order only).
        let early = try OuroRunner(weights: weights).earlyExitDecodePath(tokens: inputs, prefill: Self.prefill, kv: .exact, threshold: 0)
        XCTAssertEqual(early.loopSteps, Array(repeating: weights.config.loopCount, count: Self.prefill)
                                       + Array(repeating: 1, count: n))
        XCTAssertLessThan(ParityMetrics.maxAbsError(tail(early.logits), tail(truncatedLogits)), 1e-3)
        // Step 1 at full depth reads only step-1 K/V, which early exit computes the same way.
        XCTAssertEqual(e.vsThresholdFullDepth.maxAbsLogitError, 0)
        print(ReportText.render(report))
    }

    func testEarlyExitJSONKeys() throws {
        let errors = LogitErrors(maxAbsLogitError: 0.5, relativeRMSError: 0.1, kldMean: 0.01, kldP99: 0.1, kldMax: 0.2,
                                 top1Agreement: 0.9, positions: 10)
        var path = DecodePathErrors(kvCache: "f32, full sharing", prefillTokens: 8, final: errors, steps: [])
        path.earlyExit = EarlyExitErrors(threshold: 0.5, loopCount: 4, positions: 10, meanLoopSteps: 2.5, maxLoopSteps: 4,
                                         vsFullDepth: errors, vsThresholdFullDepth: errors)
        let data = try JSONEncoder().encode(path)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        let early = try XCTUnwrap(object["early_exit"] as? [String: Any])
        XCTAssertEqual(early["mean_loop_steps"] as? Double, 2.5)
        XCTAssertEqual(early["max_loop_steps"] as? Int, 4)
        XCTAssertEqual((early["vs_full_depth"] as? [String: Any])?["top1_agreement"] as? Double, 0.9)
        XCTAssertNotNil(early["vs_threshold_full_depth"])
        XCTAssertEqual(try JSONDecoder().decode(DecodePathErrors.self, from: data), path)
    }
}
