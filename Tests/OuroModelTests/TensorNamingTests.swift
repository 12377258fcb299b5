import XCTest
@testable import OuroModel

final class TensorNamingTests: XCTestCase {
    func testExpectedTensorsMatchEveryFixtureCheckpoint() throws {
        for name in Fixtures.all {
            let folder = Fixtures.folder(name)
            let config = try OuroConfiguration.load(folder: folder)
            let onDisk = try Fixtures.headerShapes(folder)
            let expected = TensorNaming.expectedTensors(config)
            XCTAssertEqual(Set(expected.map(\.hfName)), Set(onDisk.keys), name)
            XCTAssertEqual(expected.count, onDisk.count, name)
            for tensor in expected {
                XCTAssertEqual(onDisk[tensor.hfName], tensor.shape, "\(name) \(tensor.hfName)")
            }
        }
    }

    func testMapsNamesBothWays() throws {
        let config = try OuroConfiguration.load(folder: Fixtures.folder("ouro-tiny-b"))
        let expected = TensorNaming.expectedTensors(config)
        XCTAssertEqual(Set(expected.map(\.ggufName)).count, expected.count)
        for tensor in expected {
            XCTAssertEqual(TensorNaming.ggufName(forHF: tensor.hfName), tensor.ggufName)
            XCTAssertEqual(TensorNaming.hfName(forGGUF: tensor.ggufName), tensor.hfName)
        }
        XCTAssertEqual(TensorNaming.ggufName(forHF: "model.layers.2.input_layernorm_2.weight"),
                       "blk.2.post_attention_norm.weight")
        XCTAssertEqual(TensorNaming.ggufName(forHF: "model.layers.0.post_attention_layernorm_2.weight"),
                       "blk.0.post_ffw_norm.weight")
        XCTAssertEqual(TensorNaming.ggufName(forHF: "model.layers.1.self_attn.o_proj.weight"), "blk.1.attn_output.weight")
        XCTAssertNil(TensorNaming.ggufName(forHF: "model.layers.01.mlp.up_proj.weight"))
        XCTAssertNil(TensorNaming.ggufName(forHF: "model.layers.0.mlp.up_proj.bias"))
        XCTAssertNil(TensorNaming.hfName(forGGUF: "blk.x.attn_q.weight"))
    }

    func testShapesForGroupedQueryAttention() throws {
        let config = try OuroConfiguration.load(folder: Fixtures.folder("ouro-tiny-b"))
        let byName = Dictionary(uniqueKeysWithValues: TensorNaming.expectedTensors(config).map { ($0.ggufName, $0) })
        XCTAssertEqual(byName["blk.1.attn_q.weight"]?.shape, [128, 128])
        XCTAssertEqual(byName["blk.1.attn_k.weight"]?.shape, [32, 128])
        XCTAssertEqual(byName["blk.1.attn_v.weight"]?.ggufDimensions, [128, 32])
        XCTAssertEqual(byName["blk.1.ffn_down.weight"]?.shape, [128, 352])
        XCTAssertEqual(byName["exit_gate.bias"]?.shape, [1])
    }

    func testOnlyMatricesAreQuantizable() throws {
        let config = try OuroConfiguration.load(folder: Fixtures.folder("ouro-tiny-a"))
        let quantizable = TensorNaming.expectedTensors(config).filter(\.isQuantizable).map(\.ggufName)
        XCTAssertEqual(quantizable.count, 2 * 7 + 2)
        XCTAssertTrue(quantizable.contains("token_embd.weight"))
        XCTAssertTrue(quantizable.contains("output.weight"))
        XCTAssertFalse(quantizable.contains { $0.contains("norm") || $0.contains("exit_gate") })
    }

    func testTiedEmbeddingsOmitOutput() throws {
        var config = try OuroConfiguration.load(folder: Fixtures.folder("ouro-tiny-a"))
        config.tieWordEmbeddings = true
        let names = TensorNaming.expectedTensors(config).map(\.ggufName)
        XCTAssertFalse(names.contains("output.weight"))
        XCTAssertEqual(names.count, 1 + 2 * 11 + 1 + 2)
    }

    func testIgnoresRotaryInverseFrequencyBuffers() {
        XCTAssertTrue(TensorNaming.isIgnoredHFTensor("model.layers.0.self_attn.rotary_emb.inv_freq"))
        XCTAssertTrue(TensorNaming.isIgnoredHFTensor("model.rotary_emb.inv_freq"))
        XCTAssertFalse(TensorNaming.isIgnoredHFTensor("model.norm.weight"))
    }
}
