import Foundation
import OuroConversion
import OuroModel
import Quantization
import XCTest
@testable import OuroValidation

/// `ouro validate` on Q4_K / Q6_K conversions of the trained fixture reports the same numbers
/// within float noise whichever integer-kernel level runs (plain C, AVX2, 256/512-bit VNNI, VNNI +
/// prefill GEMM). The integer dot products are exact on every level; only the f32 sums differ, and
/// four loop steps amplify that: on this fixture the long-standing Q8_0 kernels' levels already
/// differ by up to 7 % in KLD mean and 15 % in max |dlogit|, and a near-tied greedy token can flip.
/// A wrong kernel (a scale or offset off) moves these by orders of magnitude. The validator runs
/// prefill (many tokens: the GEMM level's tiles) and cached greedy decode (one token).
final class KQuantKernelLevelTests: XCTestCase {
    override func tearDown() {
        MachineProbe.setKernelLevel("best")
        super.tearDown()
    }

    func testValidationReportIsTheSameAtEveryKernelLevel() throws {
        let folder = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        let bundle = try TestSupport.subsetBundle("ouro-trained-s", prompts: [0], in: folder)
        for type in [GGMLType.q4_K, .q6_K] {
            let path = folder.appendingPathComponent("trained-\(type.name).gguf").path
            _ = try Converter(checkpoint: TestSupport.fixture("ouro-trained-s"), type: type).convert(to: path)
            let weights = try OuroWeights.load(gguf: path)
            // Rows of 256 (attention, gate/up) are K-quants; the 704-element down rows fall back.
            let kquantMatrices = weights.layers.flatMap { [$0.q, $0.k, $0.v, $0.o, $0.gate, $0.up, $0.down] }.filter { $0.type == type }
            XCTAssertGreaterThanOrEqual(kquantMatrices.count, 6 * weights.layers.count, "\(type)")

            var reports: [(level: String, report: ValidationReport)] = []
            for level in ["c", "avx2", "vnni", "best"] {
                let name = MachineProbe.setKernelLevel(level)
                if reports.contains(where: { $0.level == name }) { continue }   // CPU without that level
                let report = try Validator(weights: weights).validate(bundle: try ReferenceBundle(path: bundle))
                reports.append((name, report))
            }
            let plain = reports[0].report
            XCTAssertEqual(reports[0].level, "scalar")
            XCTAssertGreaterThan(plain.final.kldMean, 0, "\(type) is lossy: the comparison is not vacuous")
            for (level, report) in reports.dropFirst() {
                let what = "\(type) level \(level) vs c"
                XCTAssertEqual(report.final.kldMean, plain.final.kldMean, accuracy: 0.1 * plain.final.kldMean, what)
                XCTAssertEqual(report.final.maxAbsLogitError, plain.final.maxAbsLogitError,
                               accuracy: 0.25 * plain.final.maxAbsLogitError, what)
                XCTAssertEqual(report.final.top1Agreement, plain.final.top1Agreement, accuracy: 1.5 / 64, what)
                XCTAssertEqual(report.steps.count, plain.steps.count, what)
                for (step, plainStep) in zip(report.steps, plain.steps) {
                    XCTAssertEqual(step.logits.kldMean, plainStep.logits.kldMean, accuracy: 0.1 * plainStep.logits.kldMean, what)
                }
            }
        }
    }
}
