import Foundation
import OuroModel
import XCTest
@testable import OuroValidation

/// The real runtime against the PyTorch reference, from the checkpoint folders.
final class RunnerValidationTests: XCTestCase {
    private func validate(folder: String, bundle: String? = nil, uncachedGreedy: Bool = true) throws -> ValidationReport {
        let weights = try OuroWeights.load(checkpoint: folder)
        let reference = try ReferenceBundle(path: bundle ?? TestSupport.fixture("ouro-tiny-a", "reference.safetensors"))
        return try Validator(weights: weights, uncachedGreedy: uncachedGreedy).validate(bundle: reference)
    }

    func testTinyACheckpointPassesLossless() throws {
        let report = try validate(folder: TestSupport.fixture("ouro-tiny-a"))
        print(ReportText.render(report))
        XCTAssertTrue(report.pass, "\(report.reasons)")
        XCTAssertEqual(report.modelType, "BF16")
        XCTAssertEqual(report.criteria, .lossless)
        for step in report.steps {
            XCTAssertLessThan(step.logits.maxAbsLogitError, 1e-3)
            XCTAssertLessThan(step.logits.kldMax, 1e-8)
            XCTAssertEqual(step.logits.top1Agreement, 1)
        }
        XCTAssertLessThan(report.exit.pdfMaxAbsError, 1e-5)
        XCTAssertEqual(report.exit.thresholdStepAgreement, ["0.5": 1, "0.9": 1])
        XCTAssertEqual(report.greedy.cached, GreedyCount(matched: 24, total: 24, prompts: 2))
        XCTAssertEqual(report.greedy.uncached, GreedyCount(matched: 24, total: 24, prompts: 2))
    }

    func testTinyBAndTrainedCheckpointsPassLossless() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // Debug builds are slow: all of tiny-b, the first two prompts (192 tokens) of trained-s;
        // uncached greedy re-runs the whole sequence per token, so only the cached one runs here.
        let cases = [("ouro-tiny-b", TestSupport.fixture("ouro-tiny-b", "reference.safetensors")),
                     ("ouro-trained-s", try TestSupport.subsetBundle("ouro-trained-s", prompts: [0, 1], in: dir))]
        for (name, bundle) in cases {
            let report = try validate(folder: TestSupport.fixture(name), bundle: bundle, uncachedGreedy: false)
            print(ReportText.render(report))
            XCTAssertTrue(report.pass, "\(name): \(report.reasons)")
            XCTAssertEqual(report.final.top1Agreement, 1, name)
            XCTAssertTrue(report.greedy.match, name)
            if let p = report.perplexity { XCTAssertEqual(p.ratio, 1, accuracy: 1e-4, name) }
        }
    }

    /// One bf16 weight of the shared layer 1 down projection is changed; every loop step runs the
    /// layer, so the error is there from step 1 on and the report names the first step over the limit.
    func testAlteredWeightFailsAndNamesTheLoopStep() throws {
        let folder = try alteredCopy(of: "ouro-tiny-a", tensor: "model.layers.1.mlp.down_proj.weight") { bf16 in
            for i in stride(from: 0, to: bf16.count, by: 97) { bf16[i] = bf16[i] &+ 0x0040 }   // ~+0.5 ulp-scale bumps in the exponent's low bits
        }
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let report = try validate(folder: folder)
        print(ReportText.render(report))
        XCTAssertFalse(report.pass)
        let k = try XCTUnwrap(report.firstDivergingStep)
        XCTAssertGreaterThan(report.steps[k - 1].logits.maxAbsLogitError, 1e-3)
        for step in report.steps.prefix(k - 1) { XCTAssertLessThanOrEqual(step.logits.maxAbsLogitError, 1e-3) }
        XCTAssertTrue(ReportText.verdictLine(report).hasSuffix("first diverging at loop step \(k)"),
                      ReportText.verdictLine(report))
    }

    /// A changed exit-gate bias leaves every step's logits alone but moves the exit distribution.
    func testAlteredExitGateFailsOnExitPDFOnly() throws {
        let folder = try alteredCopy(of: "ouro-tiny-a", tensor: "model.early_exit_gate.bias") { bf16 in
            bf16[0] = bf16[0] ^ 0x8000    // flip the sign
        }
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let report = try validate(folder: folder)
        XCTAssertFalse(report.pass)
        for step in report.steps { XCTAssertLessThan(step.logits.maxAbsLogitError, 1e-3) }
        XCTAssertGreaterThan(report.exit.pdfMaxAbsError, 1e-2)
        XCTAssertEqual(report.firstDivergingStep, 1)
        XCTAssertTrue(report.reasons.contains { $0.hasPrefix("exit pdf max|Δ|") }, "\(report.reasons)")
        XCTAssertFalse(report.reasons.contains { $0.hasPrefix("step logits") || $0.hasPrefix("final logits") })
        // The weighted mixture and threshold selections are built from the pdf, so they move too.
        XCTAssertTrue(report.reasons.contains { $0.hasPrefix("weighted exit logits") })
        XCTAssertLessThan(report.exit.thresholdStepAgreement["0.5"] ?? 1, 1)
    }

    /// Copies a fixture's config.json and model.safetensors to a temporary folder, editing one BF16 tensor.
    private func alteredCopy(of fixture: String, tensor: String, edit: (inout [UInt16]) -> Void) throws -> String {
        let dir = try TestSupport.temporaryDirectory()
        try FileManager.default.copyItem(atPath: TestSupport.fixture(fixture, "config.json"),
                                         toPath: dir.appendingPathComponent("config.json").path)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: TestSupport.fixture(fixture, "model.safetensors"))))
        let headerLength = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        let header = try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + headerLength)])) as! [String: Any]
        let entry = header[tensor] as! [String: Any]
        XCTAssertEqual(entry["dtype"] as? String, "BF16")
        let offsets = entry["data_offsets"] as! [Int]
        let start = 8 + headerLength + offsets[0], count = (offsets[1] - offsets[0]) / 2
        var values = (0..<count).map { UInt16(bytes[start + 2 * $0]) | UInt16(bytes[start + 2 * $0 + 1]) << 8 }
        edit(&values)
        for (i, v) in values.enumerated() {
            bytes[start + 2 * i] = UInt8(v & 0xFF)
            bytes[start + 2 * i + 1] = UInt8(v >> 8)
        }
        try Data(bytes).write(to: dir.appendingPathComponent("model.safetensors"))
        return dir.path
    }
}
