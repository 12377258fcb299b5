import Foundation
import XCTest
@testable import OuroValidation

final class ValidatorTests: XCTestCase {
    private func bundle(_ name: String) throws -> ReferenceBundle {
        try ReferenceBundle(path: TestSupport.fixture(name, "reference.safetensors"))
    }

    private func validate(_ target: ReferenceEchoTarget, type: String = "F32", criteria: PassCriteria? = nil) throws -> ValidationReport {
        try Validator(target: target, modelFile: "model.gguf", modelType: type, criteria: criteria)
            .validate(bundle: target.bundle)
    }

    func testReferenceItselfPassesLosslessOnEveryFixture() throws {
        for name in TestSupport.fixtureNames {
            let b = try bundle(name)
            let report = try validate(ReferenceEchoTarget(bundle: b))
            XCTAssertTrue(report.pass, "\(name): \(report.reasons)")
            XCTAssertEqual(report.steps.map(\.step), [1, 2, 3, 4])
            XCTAssertEqual(report.final.maxAbsLogitError, 0)
            XCTAssertEqual(report.final.kldMax, 0)
            XCTAssertEqual(report.final.top1Agreement, 1)
            XCTAssertEqual(report.final.positions, b.tokenCount)
            XCTAssertEqual(report.exit.thresholdStepAgreement, ["0.5": 1, "0.9": 1])
            XCTAssertEqual(report.exit.exitAtStep.map(\.step), [2], "bundle exit_at_step_1 is loop step 2")
            XCTAssertEqual(report.greedy.tokensTotal, 12 * b.prompts.count)
            XCTAssertTrue(report.greedy.match)
            XCTAssertTrue(ReportText.verdictLine(report).hasPrefix("OK: model.gguf matches the reference (lossless:"))
        }
    }

    /// Reference perplexity of ouro-trained-s over its 704 labels, computed independently with numpy
    /// (float64 log-softmax of reference final_logits at labels): exp(1.6366757) = 5.138061.
    func testPerplexityOfTrainedFixtureOnLabels() throws {
        let report = try validate(ReferenceEchoTarget(bundle: try bundle("ouro-trained-s")))
        let p = try XCTUnwrap(report.perplexity)
        XCTAssertEqual(p.tokens, 704)
        XCTAssertEqual(p.reference, 5.138061, accuracy: 1e-5)
        XCTAssertEqual(p.ratio, 1, accuracy: 1e-12)
        XCTAssertNil(try validate(ReferenceEchoTarget(bundle: try bundle("ouro-tiny-a"))).perplexity)
    }

    func testLogitErrorFromStepThreeFailsLosslessAndNamesThatStep() throws {
        let target = ReferenceEchoTarget(bundle: try bundle("ouro-tiny-a"))
        target.alterFromStep = 2      // 0-based: the third loop step
        target.logitOffset = 0.01
        let report = try validate(target)
        XCTAssertFalse(report.pass)
        XCTAssertEqual(report.steps[0].logits.maxAbsLogitError, 0)
        XCTAssertEqual(report.steps[1].logits.maxAbsLogitError, 0)
        XCTAssertEqual(report.steps[2].logits.maxAbsLogitError, 0.01, accuracy: 1e-5)
        XCTAssertEqual(report.steps[3].logits.maxAbsLogitError, 0.02, accuracy: 1e-5)
        XCTAssertEqual(report.firstDivergingStep, 3)
        XCTAssertTrue(report.reasons[0].hasPrefix("step logits max|Δlogit| 0.02 > 0.001"), report.reasons[0])
        XCTAssertTrue(report.reasons.contains { $0.hasPrefix("final logits max|Δlogit|") })
        let last = ReportText.render(report).split(separator: "\n").last.map(String.init)
        XCTAssertEqual(last, "NOT OK: model.gguf: step logits max|Δlogit| 0.02 > 0.001, first diverging at loop step 3")
        // A constant shift leaves the softmax alone: KL stays ~0 and top-1 unchanged.
        XCTAssertLessThan(report.steps[3].logits.kldMax, 1e-9)
        XCTAssertEqual(report.steps[3].logits.top1Agreement, 1)
    }

    func testExitPDFErrorFailsLosslessAtTheLastStep() throws {
        let target = ReferenceEchoTarget(bundle: try bundle("ouro-tiny-b"))
        target.pdfOffset = 1e-3
        let report = try validate(target)
        XCTAssertFalse(report.pass)
        XCTAssertEqual(report.exit.pdfMaxAbsError, 1e-3, accuracy: 1e-6)
        XCTAssertEqual(report.firstDivergingStep, 4)
        XCTAssertEqual(report.reasons.count, 1)
        XCTAssertTrue(report.reasons[0].hasPrefix("exit pdf max|Δ| 0.001 > 0.0001"), report.reasons[0])
    }

    func testGreedyMismatchFailsLosslessButOnlyReportsForQuantized() throws {
        let target = ReferenceEchoTarget(bundle: try bundle("ouro-tiny-a"))
        target.greedyOffset = 1
        let lossless = try validate(target)
        XCTAssertFalse(lossless.pass)
        XCTAssertEqual(lossless.greedy.tokensMatched, 22)    // 2 prompts x 11 of 12 before the changed last token
        XCTAssertEqual(lossless.greedy.cached, GreedyCount(matched: 22, total: 24, prompts: 2))
        XCTAssertEqual(lossless.reasons, ["greedy tokens differ: 22/24 matched before the first difference"])
        let quantized = try validate(target, type: "Q8_0")
        XCTAssertEqual(quantized.criteria, .q8_0)
        XCTAssertTrue(quantized.pass, "\(quantized.reasons)")
        XCTAssertFalse(quantized.greedy.match)
    }

    func testQuantizedCriteriaJudgeFinalKLAndTop1() throws {
        let target = ReferenceEchoTarget(bundle: try bundle("ouro-tiny-b"))
        target.finalScale = 1.5       // sharper distributions: KL > 0, same argmax
        let report = try validate(target, type: "Q4_0")
        XCTAssertEqual(report.final.top1Agreement, 1)
        XCTAssertGreaterThan(report.final.kldMean, 0)
        let strict = PassCriteria(name: "strict", finalKLDMean: report.final.kldMean / 2, finalTop1Min: 0.9)
        let failing = try validate(target, type: "Q4_0", criteria: strict)
        XCTAssertFalse(failing.pass)
        XCTAssertEqual(failing.reasons.count, 1)
        XCTAssertTrue(failing.reasons[0].hasPrefix("final KLD mean "), failing.reasons[0])
        // Steps are untouched by the final-logit change, so no step can be blamed.
        XCTAssertNil(failing.firstDivergingStep)
        XCTAssertEqual(ReportText.verdictLine(failing), "NOT OK: model.gguf: \(failing.reasons[0])")
    }

    func testCriteriaChosenByFileType() {
        XCTAssertEqual(PassCriteria.forFileType("F32"), .lossless)
        XCTAssertEqual(PassCriteria.forFileType("bf16"), .lossless)
        XCTAssertEqual(PassCriteria.forFileType("Q8_0"), .q8_0)
        XCTAssertEqual(PassCriteria.forFileType("Q4_0"), .q4_0)
        XCTAssertNil(PassCriteria.q8_0.maxAbsLogitError)
        XCTAssertFalse(PassCriteria.q4_0.requireGreedyMatch)
    }

    func testReportJSONHasTheDocumentedKeysAndRoundTrips() throws {
        let target = ReferenceEchoTarget(bundle: try bundle("ouro-tiny-a"))
        target.alterFromStep = 3
        target.logitOffset = 0.5
        let report = try validate(target)
        let data = try report.jsonData()
        let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        XCTAssertEqual(json["pass"] as? Bool, false)
        let final = try XCTUnwrap(json["final"] as? [String: Any])
        for key in ["max_abs_logit_error", "kld_mean", "kld_p99", "kld_max", "top1_agreement", "rel_rms_error"] {
            XCTAssertNotNil(final[key], key)
        }
        let steps = try XCTUnwrap(json["steps"] as? [[String: Any]])
        XCTAssertEqual(steps.map { $0["step"] as? Int }, [1, 2, 3, 4])
        for key in ["max_abs_logit_error", "kld_mean", "top1_agreement", "exit_pdf_max_abs_error"] {
            XCTAssertNotNil(steps[0][key], key)
        }
        XCTAssertEqual(steps[3]["max_abs_logit_error"] as? Double ?? 0, 0.5, accuracy: 1e-5)
        let exit = try XCTUnwrap(json["exit"] as? [String: Any])
        XCTAssertNotNil(exit["pdf_max_abs_error"])
        XCTAssertEqual((exit["threshold_step_agreement"] as? [String: Double])?.keys.sorted(), ["0.5", "0.9"])
        let greedy = try XCTUnwrap(json["greedy"] as? [String: Any])
        XCTAssertEqual(greedy["match"] as? Bool, true)
        XCTAssertEqual(greedy["tokens_matched"] as? Int, 24)
        XCTAssertEqual(greedy["tokens_total"] as? Int, 24)
        for key in ["model_file", "model_type", "criteria", "thresholds", "prompts", "reasons", "first_diverging_step"] {
            XCTAssertNotNil(json[key], key)
        }
        XCTAssertEqual(json["first_diverging_step"] as? Int, 4)
        let decoded = try ValidationReport.decoder().decode(ValidationReport.self, from: data)
        XCTAssertEqual(decoded.steps, report.steps)
        XCTAssertEqual(decoded.exit, report.exit)
        XCTAssertEqual(decoded.reasons, report.reasons)
    }

    func testTextReportHasOneRowPerLoopStep() throws {
        let report = try validate(ReferenceEchoTarget(bundle: try bundle("ouro-tiny-b")))
        let lines = ReportText.render(report).split(separator: "\n").map(String.init)
        let header = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("step") })
        XCTAssertTrue(lines[header].contains("max|Δlogit|") && lines[header].contains("KLD p99") && lines[header].contains("top-1"))
        for k in 1...4 { XCTAssertTrue(lines[header + k].hasPrefix("\(k) "), lines[header + k]) }
        XCTAssertTrue(lines[header + 1].contains("100.0%"))
        XCTAssertTrue(lines.contains { $0.hasPrefix("threshold exit steps equal: 0.5: 100.0%, 0.9: 100.0%") })
        XCTAssertTrue(lines.last!.hasPrefix("OK: model.gguf"))
    }

    func testModelOutputOfWrongShapeIsAnErrorNotAVerdict() throws {
        final class Short: ValidationTarget {
            let inner: ReferenceEchoTarget
            init(_ inner: ReferenceEchoTarget) { self.inner = inner }
            var dimensions: ModelDimensions { inner.dimensions }
            func run(tokens: [Int], request: OutputRequest) throws -> ModelRun {
                var r = try inner.run(tokens: tokens, request: request)
                r.stepLogits.removeLast()
                return r
            }
            func greedy(prompt: [Int], maxNewTokens: Int, cached: Bool) throws -> [Int] { [] }
        }
        let b = try bundle("ouro-tiny-a")
        let validator = Validator(target: Short(ReferenceEchoTarget(bundle: b)), modelFile: "m.gguf", modelType: "F32")
        guard case .modelOutputMismatch(path: "m.gguf", _)? = TestSupport.failure({ _ = try validator.validate(bundle: b) }) else {
            return XCTFail("expected modelOutputMismatch")
        }
    }
}
