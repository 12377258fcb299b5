import Foundation
import GGUF
import Quantization
import XCTest
@testable import OuroModel

/// The configuration and the weights through GGUF files written with GGUFWriter.
final class GGUFModelTests: XCTestCase {
    private var folder = ""

    override func setUpWithError() throws { folder = try Fixtures.temporaryFolder() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    private func writeMetadataOnly(_ entries: [(String, GGUFValue)]) throws -> GGUFFile {
        let path = folder + "/meta.gguf"
        let writer = try GGUFWriter(destination: path)
        for (key, value) in entries { try writer.add(key, value) }
        try writer.finish()
        return try GGUFFile(path: path)
    }

    func testMetadataRoundTripKeepsConfigurationUpToFloat32() throws {
        var config = try OuroConfiguration.load(folder: Fixtures.folder("ouro-tiny-b"))
        config.rmsNormEps = 1e-5
        config.eosTokenID = nil
        let metadata = config.ggufMetadata()
        XCTAssertEqual(metadata.first?.0, "general.architecture")
        XCTAssertEqual(metadata.first { $0.0 == "ouro.rope.freq_base" }?.1, .float32(1_000_000))
        XCTAssertEqual(metadata.first { $0.0 == "ouro.loop_count" }?.1, .uint32(4))
        XCTAssertEqual(metadata.first { $0.0 == "ouro.attention.head_count_kv" }?.1, .uint32(2))
        XCTAssertNil(metadata.first { $0.0 == "tokenizer.ggml.eos_token_id" })
        let again = try OuroConfiguration(gguf: writeMetadataOnly(metadata))
        var expected = config
        expected.rmsNormEps = Double(Float(1e-5))
        XCTAssertEqual(again, expected)
    }

    func testAbsentThresholdStaysAbsent() throws {
        var config = try OuroConfiguration.load(folder: Fixtures.folder("ouro-tiny-a"))
        config.earlyExitThreshold = nil
        XCTAssertNil(config.ggufMetadata().first { $0.0 == "ouro.exit_threshold" })
        XCTAssertNil(try OuroConfiguration(gguf: writeMetadataOnly(config.ggufMetadata())).earlyExitThreshold)
    }

    func testMissingMetadataKeyIsNamedWithFile() throws {
        let config = try OuroConfiguration.load(folder: Fixtures.folder("ouro-tiny-a"))
        let file = try writeMetadataOnly(config.ggufMetadata().filter { $0.0 != "ouro.attention.head_count" })
        XCTAssertThrowsError(try OuroConfiguration(gguf: file)) { error in
            XCTAssertEqual(error as? ModelError, .invalidConfig(path: file.path, key: "ouro.attention.head_count", problem: "is missing"))
        }
    }

    func testRejectsOtherArchitectureAndInvalidValues() throws {
        let config = try OuroConfiguration.load(folder: Fixtures.folder("ouro-tiny-a"))
        var llama = config.ggufMetadata()
        llama[0] = ("general.architecture", .string("llama"))
        XCTAssertThrowsError(try OuroConfiguration(gguf: writeMetadataOnly(llama))) { error in
            XCTAssertTrue("\(error)".contains("general.architecture"), "\(error)")
        }
        var zeroLoops = config.ggufMetadata()
        zeroLoops = zeroLoops.map { $0.0 == "ouro.loop_count" ? ($0.0, .uint32(0)) : $0 }
        try FileManager.default.removeItem(atPath: folder + "/meta.gguf")
        XCTAssertThrowsError(try OuroConfiguration(gguf: writeMetadataOnly(zeroLoops))) { error in
            guard case let ModelError.invalidConfig(_, key, _)? = error as? ModelError else { return XCTFail("\(error)") }
            XCTAssertEqual(key, "ouro.loop_count")
        }
    }

    func testF32GGUFMatchesReference() throws {
        let path = folder + "/tiny-a-f32.gguf"
        try GGUFBuilder.write(fixture: "ouro-tiny-a", matrixType: .f32, to: path)
        let weights = try OuroWeights.load(gguf: path)
        XCTAssertEqual(weights.fileType, .f32)
        let runner = OuroRunner(weights: weights)
        let parity = try ReferenceParity(fixture: "ouro-tiny-a")
        for prompt in parity.prompts {
            try parity.checkForward(runner, prompt: prompt)
        }
        try parity.checkGeneration(runner, prompt: parity.prompts[0])
    }

    func testQ8GGUFStaysCloseToReferenceOnTrainedModel() throws {
        let path = folder + "/trained-q8.gguf"
        try GGUFBuilder.write(fixture: "ouro-trained-s", matrixType: .q8_0, to: path)
        let weights = try OuroWeights.load(gguf: path)
        XCTAssertEqual(weights.fileType, .q8_0)
        XCTAssertEqual(weights.layers[0].q.type, .q8_0)
        XCTAssertEqual(weights.outputNorm.type, .f32)
        let parity = try ReferenceParity(fixture: "ouro-trained-s")
        let prompt = parity.prompts[0]
        let out = try OuroRunner(weights: weights).forward(tokens: parity.tokens(prompt))
        let golden = try parity.reference.floats(prompt + ".final_logits")
        let ours = out.logits(.lastStep)
        let diff = ReferenceParity.maxAbsDiff(ours, golden, "q8 final")
        XCTAssertGreaterThan(diff, 0)          // really quantized
        XCTAssertLessThan(diff, 0.5)           // logits span about ±14
        // The next-token choice agrees almost everywhere.
        let V = out.vocab
        let agree = (0..<out.tokens).filter { t in
            OuroRunner.argmax(Array(ours[t * V ..< (t + 1) * V])) == OuroRunner.argmax(Array(golden[t * V ..< (t + 1) * V]))
        }.count
        XCTAssertGreaterThanOrEqual(Double(agree) / Double(out.tokens), 0.9)
    }

    func testRejectsGGUFWithExtraOrMisshapenTensor() throws {
        let extra = folder + "/extra.gguf"
        try GGUFBuilder.write(fixture: "ouro-tiny-a", matrixType: .f32, to: extra, tensors: { entries in
            entries.append((ExpectedTensor(ggufName: "blk.0.attn_q.bias", hfName: "", shape: [64], role: .norm), [Float](repeating: 0, count: 64)))
        })
        XCTAssertThrowsError(try OuroWeights.load(gguf: extra)) { error in
            XCTAssertEqual(error as? ModelError, .unexpectedTensor(path: extra, name: "blk.0.attn_q.bias"))
        }
        let bent = folder + "/bent.gguf"
        try GGUFBuilder.write(fixture: "ouro-tiny-a", matrixType: .f32, to: bent, tensors: { entries in
            let i = entries.firstIndex { $0.0.ggufName == "blk.1.ffn_up.weight" }!
            let t = entries[i].0
            entries[i].0 = ExpectedTensor(ggufName: t.ggufName, hfName: t.hfName, shape: [96, 128], role: t.role)
        })
        XCTAssertThrowsError(try OuroWeights.load(gguf: bent)) { error in
            XCTAssertEqual(error as? ModelError, .shapeMismatch(path: bent, name: "blk.1.ffn_up.weight", expected: [192, 64], actual: [96, 128]))
        }
    }
}
