import Foundation
import OuroConversion
import OuroModel
import Quantization
import XCTest
@testable import OuroValidation

/// End to end on the trained fixture: the loop-aware search at 4.5 bpw, converted and validated
/// in-process, against ggml's Q4_0 at the same size.
final class LoopPresetValidationTests: XCTestCase {
    private var folder = ""
    override func setUpWithError() throws { folder = try TestSupport.temporaryDirectory().path }
    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    func testLoopPresetAt4_5BitsBeatsQ4_0FinalKLD() throws {
        let source = TestSupport.fixture("ouro-trained-s")
        let weights = try OuroWeights.load(checkpoint: source)
        // Small for a debug build: 64 self-sampled tokens, the three 4.5-bpw candidates.
        let tokens = try Calibration.sample(weights: weights, sequences: 1, length: 64, seed: 0)
        var search = SensitivitySearch(candidates: [.q4_0, .iq4_nl, .q4_K])
        search.window = 64
        let result = try search.run(weights: weights, tokens: tokens, budget: 4.5)
        XCTAssertLessThanOrEqual(result.bitsPerWeight, 4.5)

        let loopPath = folder + "/loop.gguf", q4Path = folder + "/q4_0.gguf"
        let loopSummary = try Converter(checkpoint: source, recipe: result.recipe, weights: weights).convert(to: loopPath)
        XCTAssertLessThanOrEqual(loopSummary.plan.quantizedBitsPerWeight, 4.5)
        _ = try Converter(checkpoint: source, type: .q4_0).convert(to: q4Path)

        let bundle = try ReferenceBundle(path: TestSupport.subsetBundle("ouro-trained-s", prompts: [0, 2], in: URL(fileURLWithPath: folder)))
        let loopWeights = try OuroWeights.load(gguf: loopPath)
        XCTAssertEqual(loopWeights.quantizationRecipe, "loop")
        let loop = try Validator(weights: loopWeights).validate(bundle: bundle)
        let q4 = try Validator(weights: try OuroWeights.load(gguf: q4Path)).validate(bundle: bundle)
        XCTAssertEqual(loop.criteria, .q4)
        XCTAssertTrue(loop.pass, "\(loop.reasons)")
        XCTAssertLessThan(loop.final.kldMean, q4.final.kldMean)
        XCTAssertLessThan(loop.steps.last!.logits.kldMean, q4.steps.last!.logits.kldMean)
    }
}
