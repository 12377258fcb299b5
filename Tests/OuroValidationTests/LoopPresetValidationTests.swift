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
        // Small for a debug build: 48 self-sampled tokens, two 4.5-bpw candidates.
        let tokens = try Calibration.sample(weights: weights, sequences: 1, length: 48, seed: 0)
        var search = SensitivitySearch(candidates: [.q4_0, .q4_K])
        search.window = 48
        let result = try search.run(weights: weights, tokens: tokens, budget: 4.5)
        XCTAssertLessThanOrEqual(result.bitsPerWeight, 4.5)

        let loopPath = folder + "/loop.gguf", q4Path = folder + "/q4_0.gguf"
        let loopSummary = try Converter(checkpoint: source, recipe: result.recipe, weights: weights).convert(to: loopPath)
        XCTAssertLessThanOrEqual(loopSummary.plan.quantizedBitsPerWeight, 4.5)
        _ = try Converter(checkpoint: source, type: .q4_0).convert(to: q4Path)

        // The last loop step's mean KLD from the PyTorch reference over every held-out prompt (the
        // validator's step metric, without its slow greedy runs in a debug build). One short prompt
        // alone is too noisy to rank two 4.5-bpw files: on p0 (64 tokens) Q4_0 happens to beat Q4_K.
        let bundle = try ReferenceBundle(path: TestSupport.fixture("ouro-trained-s", "reference.safetensors"))
        let last = bundle.steps - 1, v = bundle.vocab
        func lastStepKLD(_ path: String) throws -> Double {
            let runner = OuroRunner(weights: try OuroWeights.load(gguf: path))
            var total = 0.0, positions = 0
            for layout in bundle.prompts {
                let prompt = try bundle.load(layout)
                let t = layout.tokens
                let refLast = Array(prompt.stepLogits[last * t * v..<(last + 1) * t * v])
                let out = try runner.forward(tokens: prompt.inputIDs)
                total += ParityMetrics.rowKL(reference: refLast, model: out.stepLogits[last], rows: t, width: v).reduce(0, +)
                positions += t
            }
            return total / Double(positions)
        }
        XCTAssertEqual(try OuroWeights.load(gguf: loopPath).quantizationRecipe, "loop")
        let loopKLD = try lastStepKLD(loopPath), q4KLD = try lastStepKLD(q4Path)
        XCTAssertLessThan(loopKLD, q4KLD)
        XCTAssertLessThan(loopKLD, 2e-2)
    }
}
