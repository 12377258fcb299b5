import Foundation
import XCTest
@testable import OuroModel

final class OuroConfigurationTests: XCTestCase {
    private func decode(_ json: String) throws -> OuroConfiguration {
        try JSONDecoder().decode(OuroConfiguration.self, from: Data(json.utf8))
    }

    /// A minimal valid config with one key replaced, added or removed.
    private func json(_ overrides: [String: String], removing: [String] = []) -> String {
        var fields: [String: String] = [
            "model_type": "\"ouro\"", "hidden_size": "64", "intermediate_size": "192", "num_hidden_layers": "2",
            "num_attention_heads": "4", "num_key_value_heads": "2", "vocab_size": "384",
            "max_position_embeddings": "2048",
        ]
        for (k, v) in overrides { fields[k] = v }
        for k in removing { fields[k] = nil }
        return "{" + fields.map { "\"\($0.key)\": \($0.value)" }.joined(separator: ", ") + "}"
    }

    private func assertInvalid(_ text: String, key: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try text.write(toFile: folder + "/config.json", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try OuroConfiguration.load(folder: folder), file: file, line: line) { error in
            guard case let ModelError.invalidConfig(path, badKey, _) = error else {
                return XCTFail("unexpected error \(error)", file: file, line: line)
            }
            XCTAssertEqual(path, folder + "/config.json", file: file, line: line)
            XCTAssertEqual(badKey, key, file: file, line: line)
            XCTAssertTrue("\(error)".contains(key), file: file, line: line)
            XCTAssertFalse("\(error)".contains("\n"), file: file, line: line)
        }
    }

    func testLoadsTinyBFixture() throws {
        let config = try OuroConfiguration.load(folder: Fixtures.folder("ouro-tiny-b"))
        XCTAssertEqual(config.hiddenSize, 128)
        XCTAssertEqual(config.intermediateSize, 352)
        XCTAssertEqual(config.layerCount, 3)
        XCTAssertEqual(config.headCount, 8)
        XCTAssertEqual(config.kvHeadCount, 2)
        XCTAssertEqual(config.headDim, 16)
        XCTAssertEqual(config.vocabSize, 1000)
        XCTAssertEqual(config.maxPositions, 65536)
        XCTAssertEqual(config.ropeTheta, 1_000_000)
        XCTAssertEqual(config.rmsNormEps, 1e-6)
        XCTAssertEqual(config.loopCount, 4)
        XCTAssertEqual(config.earlyExitThreshold, 1.0)
        XCTAssertFalse(config.tieWordEmbeddings)
        XCTAssertEqual(config.bosTokenID, 0)
        XCTAssertEqual(config.eosTokenID, 0)
        XCTAssertEqual(config.padTokenID, 0)
    }

    func testAppliesUpstreamDefaultsForAbsentKeys() throws {
        let config = try decode(json([:]))
        XCTAssertEqual(config.headDim, 16)          // hidden / heads
        XCTAssertEqual(config.ropeTheta, 10000)
        XCTAssertEqual(config.rmsNormEps, 1e-6)
        XCTAssertEqual(config.loopCount, 4)
        XCTAssertNil(config.earlyExitThreshold)
        XCTAssertFalse(config.tieWordEmbeddings)
        XCTAssertNil(config.bosTokenID)
        XCTAssertEqual(try decode(json([:], removing: ["num_key_value_heads"])).kvHeadCount, 4)
    }

    func testNullThresholdAndTokenIDsAreNil() throws {
        let config = try decode(json(["early_exit_threshold": "null", "eos_token_id": "null", "bos_token_id": "7",
                                      "total_ut_steps": "3", "rope_scaling": "null"]))
        XCTAssertNil(config.earlyExitThreshold)
        XCTAssertNil(config.eosTokenID)
        XCTAssertEqual(config.bosTokenID, 7)
        XCTAssertEqual(config.loopCount, 3)
    }

    func testJSONRoundTripKeepsEveryField() throws {
        var config = try OuroConfiguration.load(folder: Fixtures.folder("ouro-trained-s"))
        config.earlyExitThreshold = 0.75
        config.padTokenID = nil
        let again = try JSONDecoder().decode(OuroConfiguration.self, from: JSONEncoder().encode(config))
        XCTAssertEqual(again, config)
    }

    func testRejectsMissingConfigNamingFile() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        XCTAssertThrowsError(try OuroConfiguration.load(folder: folder)) { error in
            XCTAssertEqual(error as? ModelError, .unreadableConfig(path: folder + "/config.json", reason: "no such file"))
            XCTAssertTrue("\(error)".contains("config.json"))
        }
    }

    func testRejectsNonJSONConfig() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try "hidden_size = 3".write(toFile: folder + "/config.json", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try OuroConfiguration.load(folder: folder)) { error in
            guard case let ModelError.unreadableConfig(path, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(path, folder + "/config.json")
        }
    }

    func testRejectsMissingRequiredKey() throws {
        try assertInvalid(json([:], removing: ["hidden_size"]), key: "hidden_size")
        try assertInvalid(json([:], removing: ["model_type"]), key: "model_type")
    }

    func testRejectsWrongModelType() throws {
        try assertInvalid(json(["model_type": "\"llama\""]), key: "model_type")
    }

    func testRejectsWrongValueTypeNamingKey() throws {
        try assertInvalid(json(["num_hidden_layers": "\"two\""]), key: "num_hidden_layers")
    }

    func testRejectsNonPositiveSizes() throws {
        try assertInvalid(json(["hidden_size": "0"]), key: "hidden_size")
        try assertInvalid(json(["vocab_size": "-5"]), key: "vocab_size")
        try assertInvalid(json(["total_ut_steps": "0"]), key: "total_ut_steps")
        try assertInvalid(json(["intermediate_size": "0"]), key: "intermediate_size")
    }

    func testRejectsKVHeadsThatDoNotDivideHeads() throws {
        try assertInvalid(json(["num_key_value_heads": "3"]), key: "num_key_value_heads")
    }

    func testRejectsBadRopeThetaAndEpsilon() throws {
        try assertInvalid(json(["rope_theta": "0"]), key: "rope_theta")
        try assertInvalid(json(["rms_norm_eps": "-1e-6"]), key: "rms_norm_eps")
        try assertInvalid(json(["rms_norm_eps": "1e-60"]), key: "rms_norm_eps")   // 0 as float32
    }

    func testRejectsRopeScalingAsUnsupported() throws {
        try assertInvalid(json(["rope_scaling": "{\"type\": \"linear\", \"factor\": 2.0}"]), key: "rope_scaling")
    }

    func testRejectsActivationOtherThanSilu() throws {
        try assertInvalid(json(["hidden_act": "\"gelu\""]), key: "hidden_act")
    }

    func testRejectsOddHeadDim() throws {
        try assertInvalid(json(["head_dim": "15"]), key: "head_dim")
    }

    func testRejectsOverflowingSizes() throws {
        try assertInvalid(json(["vocab_size": "4294967295", "hidden_size": "4294967295", "num_attention_heads": "1",
                                "num_key_value_heads": "1", "head_dim": "2"]), key: "vocab_size")
    }
}
