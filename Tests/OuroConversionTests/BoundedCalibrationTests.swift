import Foundation
import OuroConversion
import OuroModel
import OuroTestSupport
import Quantization
import XCTest

/// The pieces that bound a real-size loop conversion's time and memory: Hessians gathered a layer
/// group at a time, calibration sampled in lockstep, forwards on a Q8_0 copy.
final class BoundedCalibrationTests: XCTestCase {
    /// Gathering H one layer per pass gives the same matrices as one pass over every layer, and
    /// `HessianGroups` holds one group at a time.
    func testLayerGroupsGatherTheSameHessiansAsOnePass() throws {
        let weights = try OuroWeights.load(checkpoint: Fixtures.folder("ouro-trained-s"))
        let tokens = (0..<96).map { ($0 * 37 + 11) % weights.config.vocabSize }
        let all = try Hessians.collect(weights: weights, tokens: tokens, window: 48)
        let layerBytes = 4 * (2 * weights.config.hiddenSize * weights.config.hiddenSize
            + weights.config.intermediateSize * weights.config.intermediateSize
            + weights.config.headCount * weights.config.headDim * weights.config.headCount * weights.config.headDim)
        let groups = HessianGroups(weights: weights, tokens: tokens, window: 48, groupBytes: layerBytes)
        XCTAssertEqual(groups.groups.count, weights.config.layerCount)
        XCTAssertNil(try groups.all(), "several groups never hold every H at once")
        var passes = 0
        groups.onGroupStart = { _, _ in passes += 1 }
        for (name, expected) in all.byTensor.sorted(by: { $0.key < $1.key }) {
            XCTAssertTrue(groups.covers(name), name)
            let got = try XCTUnwrap(groups.matrix(for: name), name)
            XCTAssertEqual(got.rows, expected.rows, name)
            var worst: Float = 0, scale: Float = 0
            for i in 0..<expected.values.count {
                worst = max(worst, abs(got.values[i] - expected.values[i]))
                scale = max(scale, abs(expected.values[i]))
            }
            XCTAssertLessThanOrEqual(worst, 1e-5 * scale, name)
        }
        XCTAssertFalse(groups.covers("token_embd.weight"))
        XCTAssertFalse(groups.covers("blk.0.attn_norm.weight"))
        // Sorted names visit blk.0, blk.1, ..., output: each group once, then the head's again.
        XCTAssertLessThanOrEqual(passes, weights.config.layerCount + 1)
    }

    /// A GPTQ file written with Hessians taken a group at a time is byte for byte the file written
    /// with every H gathered up front.
    func testGroupedHessiansWriteTheSameFile() throws {
        let folder = Fixtures.folder("ouro-trained-s")
        let weights = try OuroWeights.load(checkpoint: folder)
        let tokens = (0..<128).map { ($0 * 53 + 7) % weights.config.vocabSize }
        var recipe = QuantizationRecipe.uniform(.q4_K)
        recipe.name += "+gptq"
        let dir = try Fixtures.temporaryFolder()
        let all = try Hessians.collect(weights: weights, tokens: tokens, window: 64)
        _ = try Converter(checkpoint: folder, recipe: recipe, hessians: all, weights: weights).convert(to: dir + "/all.gguf")
        var grouped = try Converter(checkpoint: folder, recipe: recipe, weights: weights)
        grouped.hessianGroups = HessianGroups(weights: weights, tokens: tokens, window: 64, groupBytes: 1)
        _ = try grouped.convert(to: dir + "/grouped.gguf")
        let a = try Data(contentsOf: URL(fileURLWithPath: dir + "/all.gguf"))
        let b = try Data(contentsOf: URL(fileURLWithPath: dir + "/grouped.gguf"))
        XCTAssertEqual(a.count, b.count)
        XCTAssertTrue(a == b, "grouped Hessians changed the file")
    }

    /// Lockstep sampling draws each sequence as sampling it alone with the same seed does.
    func testLockstepSamplingMatchesOneSequenceAtATime() throws {
        let weights = try OuroWeights.load(checkpoint: Fixtures.folder("ouro-trained-s"))
        let batched = try BatchedForward(runner: OuroRunner(weights: weights)).sample(sequences: 3, length: 24, seed: 5)
        let alone = try (0..<3).map { s in
            try Calibration.sample(weights: weights, sequences: 1, length: 24, seed: 5 + UInt64(s))
        }
        XCTAssertEqual(batched, alone)
        XCTAssertEqual(Set(batched.map { $0 }).count, 3, "different seeds give different texts")
    }

    /// The Q8_0 calibration copy stores every projection and the head as ggml's Q8_0 of the source
    /// rows, and leaves norms and the embedding as they were.
    func testReencodedCopyIsQ8_0OfEveryMatrix() throws {
        let weights = try OuroWeights.load(checkpoint: Fixtures.folder("ouro-tiny-a"))
        let copy = try weights.reencoded(as: .q8_0)
        for layer in 0..<weights.config.layerCount {
            let name = "blk.\(layer).ffn_up.weight"
            let source = try XCTUnwrap(weights.tensor(name)), encoded = try XCTUnwrap(copy.tensor(name))
            XCTAssertEqual(encoded.type, .q8_0)
            let n = source.columns, rowBytes = GGMLType.q8_0.rowByteCount(n)!
            var floats = [Float](repeating: 0, count: n), expected = [UInt8](repeating: 0, count: rowBytes)
            for r in [0, source.rows - 1] {
                floats.withUnsafeMutableBufferPointer { f in
                    dequantizeRow(source.type, source.bytes.baseAddress! + r * source.rowByteCount, count: n, into: f.baseAddress!)
                    expected.withUnsafeMutableBytes { quantizeRow(.q8_0, f.baseAddress!, count: n, into: $0.baseAddress!) }
                }
                XCTAssertEqual(Array(encoded.bytes[(r * rowBytes)..<((r + 1) * rowBytes)]), expected)
            }
        }
        XCTAssertEqual(copy.tensor("token_embd.weight")?.type, weights.tensor("token_embd.weight")?.type)
        XCTAssertEqual(copy.tensor("blk.0.attn_norm.weight")?.type, weights.tensor("blk.0.attn_norm.weight")?.type)
    }
}
