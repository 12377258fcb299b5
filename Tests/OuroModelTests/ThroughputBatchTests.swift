import CKernels
import OuroTestSupport
import Quantization
import XCTest
@testable import OuroModel

/// `ouro serve`'s batched decode with the compute-lean kernels (BatchedForward's throughputKernels)
/// on the trained fixture quantized to Q4_0 and Q8_0: four sequences decoded together give the
/// logits each gives decoded alone (OuroSession, one token at a time) within noise, and the same
/// greedy token wherever the choice is not a near tie; the output head runs only where the exit mode
/// reads it.
///
/// The noise is more than f32 rounding: every linear layer re-quantizes its input to int8 blocks, so
/// a rounding difference that moves one activation across a rounding boundary changes that block by
/// up to 1/127 of its scale, and 4 loop steps x 4 layers carry it on. Measured here, with the
/// lean kernels or without them (the old batched path), up to 0.8 % of the largest logit.
final class ThroughputBatchTests: XCTestCase {
    private func quantized(_ weights: OuroWeights, _ type: GGMLType) throws -> OuroWeights {
        var replacements: [String: WeightTensor] = [:]
        for (name, tensor) in weights.tensorsByName where tensor.shape.count == 2 && tensor.shape[0] > 1 && tensor.shape[1] % 32 == 0 {
            replacements[name] = try WeightTensor(type: type, shape: tensor.shape, copying: quantize(type, tensor.floats()))
        }
        XCTAssertFalse(replacements.isEmpty)
        return try weights.replacing(replacements)
    }

    private func argmax(_ logits: [Float]) -> Int { logits.indices.max { logits[$0] < logits[$1] }! }

    func testFourSequencesDecodeAsEachAlone() throws {
        let base = try OuroWeights.load(checkpoint: Fixtures.folder("ouro-trained-s"))
        let prompts = [[3, 141, 59, 26, 17], [9, 32, 335, 8, 77, 21, 5, 90, 11], [40], [7, 7, 100, 250]]
        let decoded = 8, tolerance: Float = 0.02
        for type in [GGMLType.q4_0, .q8_0] {
            let runner = OuroRunner(weights: try quantized(base, type), threads: 2)
            // Alone: greedy, one token per call.
            var aloneTokens: [[Int]] = [], aloneLogits: [[[Float]]] = []
            for prompt in prompts {
                let session = try OuroSession(runner: runner, exit: .lastStep)
                var logits = try session.append(prompt)
                var tokens: [Int] = [], steps: [[Float]] = []
                for _ in 0..<decoded {
                    steps.append(logits)
                    tokens.append(argmax(logits))
                    logits = try session.append([tokens.last!])
                }
                aloneTokens.append(tokens)
                aloneLogits.append(steps)
            }
            // With the mapped weights and with the copy packed for the lean kernels.
            for pack in [false, true] {
                // Together: prompts in one pass, then every decode step for all four in one pass (4-row
                // products: the lean kernels), fed the tokens decoded alone so that one near tie does
                // not change every later context.
                let packed = pack ? LeanPackedWeights(weights: runner.weights, threads: 2) : nil
                if let packed, ck_lean_tokens(LinearKernels.integerKernelType(type)!) > 0 {
                    // Every projection and the output head packed.
                    let layer = runner.weights.layers[0]
                    XCTAssertEqual(packed.byteCount, runner.config.layerCount * [layer.q, layer.k, layer.v, layer.o, layer.gate, layer.up, layer.down]
                        .reduce(0) { $0 + $1.bytes.count } + runner.weights.output.bytes.count, "\(type)")
                }
                let batch = BatchedForward(runner: runner, throughputKernels: true, packedWeights: packed)
                let sequences = try prompts.map { _ in try batch.makeSequence(exit: .lastStep) }
                var outputs = try batch.run(Array(zip(sequences, prompts)))
                var clearChoices = 0
                for k in 0..<decoded {
                    for s in prompts.indices {
                        let logits = outputs[s].logits(.lastStep), alone = aloneLogits[s][k]
                        let scale = alone.map { abs($0) }.max()!
                        let what = "\(type) packed \(pack) seq \(s) token \(k)"
                        XCTAssertLessThan(ReferenceParity.maxAbsDiff(logits, alone, what), tolerance * scale, what)
                        // The same greedy token unless alone's top two are within twice the noise bound.
                        let top = alone.sorted(by: >)
                        if top[0] - top[1] > 2 * tolerance * scale {
                            XCTAssertEqual(argmax(logits), aloneTokens[s][k], what)
                            clearChoices += 1
                        }
                        // The head ran only at the last step (the exit mode's).
                        XCTAssertEqual(outputs[s].stepLogits.map(\.isEmpty), [true, true, true, false], what)
                    }
                    outputs = try batch.run(sequences.indices.map { (sequences[$0], [aloneTokens[$0][k]]) })
                }
                XCTAssertGreaterThan(clearChoices, decoded * prompts.count / 2, "\(type): too few clear greedy choices to compare")
            }
        }
    }

    /// Threshold exit: the head runs once per sequence, at the step LoopOutputs.exitSteps picks, and
    /// no logits are made for a prompt chunk that does not need them.
    func testHeadRunsOnlyWhereTheExitModeReadsIt() throws {
        let runner = OuroRunner(weights: try OuroWeights.load(checkpoint: Fixtures.folder("ouro-trained-s")))
        let batch = BatchedForward(runner: runner)
        let threshold = try batch.makeSequence(exit: .threshold(0.5))
        let every = try batch.makeSequence(exit: .weighted)
        let chunk = try batch.makeSequence(exit: .lastStep)
        let outputs = try batch.run([(threshold, [3, 141, 59]), (every, [9, 32]), (chunk, [40, 41])], needsLogits: [true, true, false])
        let exitStep = outputs[0].exitSteps(threshold: 0.5)[0]
        XCTAssertTrue(outputs[0].stepLogits.allSatisfy(\.isEmpty))
        XCTAssertEqual(outputs[0].logits(.threshold(0.5)).count, runner.config.vocabSize)
        XCTAssertTrue(outputs[1].stepLogits.allSatisfy { $0.count == runner.config.vocabSize })
        XCTAssertTrue(outputs[2].stepLogits.allSatisfy(\.isEmpty))
        // Against a full forward of the same tokens: the threshold logits are its exit step's.
        let full = try runner.forward(tokens: [3, 141, 59])
        let V = runner.config.vocabSize
        let expected = Array(full.stepLogits[exitStep][2 * V ..< 3 * V])
        XCTAssertLessThan(ReferenceParity.maxAbsDiff(outputs[0].logits(.threshold(0.5)), expected, "threshold"),
                          1e-3 * expected.map { abs($0) }.max()!)
    }
}
