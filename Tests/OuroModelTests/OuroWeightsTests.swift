import Foundation
import Quantization
import XCTest
@testable import OuroModel

final class OuroWeightsTests: XCTestCase {
    private func assertLoadFails(_ builder: CheckpointBuilder, file: StaticString = #filePath, line: UInt = #line,
                                 _ check: (ModelError) -> Void) throws {
        let folder = try builder.write()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        XCTAssertThrowsError(try OuroWeights.load(checkpoint: folder), file: file, line: line) { error in
            guard let error = error as? ModelError else { return XCTFail("\(error)", file: file, line: line) }
            XCTAssertFalse(error.description.contains("\n"), file: file, line: line)
            check(error)
        }
    }

    func testLoadsShardedCheckpointInPlaceAsBF16() throws {
        let weights = try OuroWeights.load(checkpoint: Fixtures.folder("ouro-tiny-b"))
        XCTAssertEqual(weights.layers.count, 3)
        XCTAssertEqual(weights.fileType, .bf16)
        XCTAssertEqual(weights.layers[2].k.shape, [32, 128])
        XCTAssertEqual(weights.output.shape, [1000, 128])
        XCTAssertEqual(weights.exitGateBias.floats().count, 1)
        XCTAssertEqual(weights.layers[0].q.bytes.count, 128 * 128 * 2)
    }

    func testRejectsMissingTensorNamingIt() throws {
        var builder = try CheckpointBuilder(fixture: "ouro-tiny-a")
        builder.remove("model.layers.1.mlp.up_proj.weight")
        try assertLoadFails(builder) { error in
            guard case let .missingTensor(_, name) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(name, "model.layers.1.mlp.up_proj.weight")
        }
    }

    func testRejectsWrongShapeNamingExpectedAndActual() throws {
        var builder = try CheckpointBuilder(fixture: "ouro-tiny-a")
        builder.update("model.layers.0.self_attn.k_proj.weight") { $0.shape = [32, 128] }
        try assertLoadFails(builder) { error in
            XCTAssertEqual(error.description.hasSuffix("tensor 'model.layers.0.self_attn.k_proj.weight' has shape [32, 128]; expected [64, 64]"), true, "\(error)")
            XCTAssertTrue(error.description.contains("model.safetensors"))
        }
    }

    func testRejectsUnexpectedTensorButIgnoresRotaryBuffers() throws {
        var builder = try CheckpointBuilder(fixture: "ouro-tiny-a")
        builder.tensors.append(.init(name: "model.layers.0.self_attn.rotary_emb.inv_freq", dtype: "F32", shape: [8], bytes: Array(repeating: 0, count: 32)))
        let folder = try builder.write()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        XCTAssertNoThrow(try OuroWeights.load(checkpoint: folder))

        builder.tensors.append(.init(name: "model.layers.0.mlp.extra.weight", dtype: "BF16", shape: [2], bytes: [0, 0, 0, 0]))
        try assertLoadFails(builder) { error in
            guard case let .unexpectedTensor(_, name) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(name, "model.layers.0.mlp.extra.weight")
        }
    }

    func testRejectsIntegerDtype() throws {
        var builder = try CheckpointBuilder(fixture: "ouro-tiny-a")
        builder.update("model.norm.weight") { $0.dtype = "I16" }
        try assertLoadFails(builder) { error in
            XCTAssertEqual(error, .unsupportedType(path: error.pathForTest, name: "model.norm.weight", type: "I16", allowed: "BF16, F16 or F32"))
        }
    }

    func testTiedModelUsesEmbeddingAsOutputAndIgnoresStoredLMHead() throws {
        var builder = try CheckpointBuilder(fixture: "ouro-tiny-a")
        builder.config = builder.config.replacingOccurrences(of: "\"tie_word_embeddings\": false", with: "\"tie_word_embeddings\": true")
        let folder = try builder.write()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let weights = try OuroWeights.load(checkpoint: folder)
        XCTAssertTrue(weights.config.tieWordEmbeddings)
        XCTAssertEqual(weights.output.bytes.baseAddress, weights.tokenEmbedding.bytes.baseAddress)
    }

    func testF32CheckpointGivesSameLogitsAsBF16() throws {
        // Widening bf16 to f32 is exact, so both paths must agree (f32 goes through sgemm directly).
        var builder = try CheckpointBuilder(fixture: "ouro-tiny-a")
        for i in builder.tensors.indices {
            let halves = builder.tensors[i].bytes.count / 2
            var widened = [UInt8]()
            widened.reserveCapacity(halves * 4)
            for j in 0..<halves {
                widened += [0, 0, builder.tensors[i].bytes[2 * j], builder.tensors[i].bytes[2 * j + 1]]
            }
            builder.tensors[i].dtype = "F32"
            builder.tensors[i].bytes = widened
        }
        let folder = try builder.write()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let f32 = try OuroWeights.load(checkpoint: folder)
        XCTAssertEqual(f32.fileType, .f32)
        let tokens = [5, 17, 300, 2, 99, 42]
        let a = try OuroRunner(weights: f32).forward(tokens: tokens)
        let b = try OuroRunner(weights: OuroWeights.load(checkpoint: Fixtures.folder("ouro-tiny-a"))).forward(tokens: tokens)
        for s in 0..<a.steps {
            XCTAssertLessThan(ReferenceParity.maxAbsDiff(a.stepLogits[s], b.stepLogits[s], "step \(s)"), 1e-4)
        }
    }
}

extension ModelError {
    var pathForTest: String {
        switch self {
        case let .unsupportedType(path, _, _, _), let .missingTensor(path, _), let .unexpectedTensor(path, _),
             let .shapeMismatch(path, _, _, _), let .invalidConfig(path, _, _), let .unreadableConfig(path, _):
            return path
        default: return ""
        }
    }
}
