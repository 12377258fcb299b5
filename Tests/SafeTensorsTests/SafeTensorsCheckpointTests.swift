import Foundation
import XCTest
@testable import SafeTensors

final class SafeTensorsCheckpointTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = try makeTemporaryDirectory()
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// A one-F32-tensor-per-name safetensors file.
    private func shard(_ names: [String]) -> [UInt8] {
        let entries = names.enumerated().map { i, name in
            #""\#(name)":{"dtype":"F32","shape":[1],"data_offsets":[\#(4 * i),\#(4 * i + 4)]}"#
        }
        var data: [UInt8] = []
        for i in names.indices { data += withUnsafeBytes(of: Float(i + 1).bitPattern.littleEndian, Array.init) }
        return safetensorsBytes(header: "{" + entries.joined(separator: ",") + "}", data: data)
    }

    private func writeIndex(_ text: String) throws {
        try writeFile(directory + "/model.safetensors.index.json", Array(text.utf8))
    }

    private func weightMap(_ pairs: [(String, String)]) -> String {
        #"{"metadata":{"total_size":0},"weight_map":{"# + pairs.map { #""\#($0.0)":"\#($0.1)""# }.joined(separator: ",") + "}}"
    }

    // MARK: Fixtures

    func testShardedFixtureFindsEveryIndexedTensorInItsShard() throws {
        let folder = Fixtures.path("ouro-tiny-b")
        let checkpoint = try SafeTensorsCheckpoint(folder: folder)
        let index = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: folder + "/model.safetensors.index.json"))) as! [String: Any]
        let map = index["weight_map"] as! [String: String]

        XCTAssertEqual(checkpoint.files.count, 2)
        XCTAssertEqual(checkpoint.tensorNames, map.keys.sorted())
        XCTAssertEqual(checkpoint.tensorNames.count, 38)
        for (name, shard) in map {
            let found = try XCTUnwrap(checkpoint.tensor(name), name)
            XCTAssertEqual(found.file.path, folder + "/" + shard, name)
            XCTAssertEqual(found.info.name, name)
        }
        XCTAssertNil(checkpoint.tensor("model.layers.3.mlp.up_proj.weight"))
        // numpy over the raw BF16 bytes (u2 << 16 viewed as f4).
        let (normFile, _) = try XCTUnwrap(checkpoint.tensor("model.norm.weight"))
        XCTAssertEqual(Array(try normFile.floats("model.norm.weight").prefix(2)), [0.8984375, 0.9140625])
        let (embedFile, embed) = try XCTUnwrap(checkpoint.tensor("model.embed_tokens.weight"))
        XCTAssertEqual(embed.shape, [1000, 128])
        XCTAssertEqual(try embedFile.floats(embed.name)[999 * 128 + 127], 0.546875)
    }

    func testSingleFileFixtureIsReadWithoutAnIndex() throws {
        let folder = Fixtures.path("ouro-tiny-a") + "/"
        let checkpoint = try SafeTensorsCheckpoint(folder: folder)
        XCTAssertEqual(checkpoint.files.map(\.path), [folder + "model.safetensors"])
        XCTAssertEqual(checkpoint.tensorNames.count, 27)
        XCTAssertEqual(checkpoint.tensorNames, checkpoint.tensorNames.sorted())
        XCTAssertEqual(checkpoint.tensor("model.norm.weight")?.info.shape, [64])
    }

    // MARK: Synthetic folders

    func testTensorsOnlyInAShardButNotInTheMapAreStillListed() throws {
        try writeFile(directory + "/a.safetensors", shard(["x", "extra"]))
        try writeIndex(weightMap([("x", "a.safetensors")]))
        let checkpoint = try SafeTensorsCheckpoint(folder: directory)
        XCTAssertEqual(checkpoint.tensorNames, ["extra", "x"])
        XCTAssertEqual(try checkpoint.tensor("extra")?.file.floats("extra"), [2])
    }

    func testIndexTakesPrecedenceOverASingleFile() throws {
        try writeFile(directory + "/model.safetensors", shard(["single"]))
        try writeFile(directory + "/s1.safetensors", shard(["sharded"]))
        try writeIndex(weightMap([("sharded", "s1.safetensors")]))
        XCTAssertEqual(try SafeTensorsCheckpoint(folder: directory).tensorNames, ["sharded"])
    }

    func testRejectsMissingShardNamingIt() throws {
        try writeFile(directory + "/a.safetensors", shard(["x"]))
        try writeIndex(weightMap([("x", "a.safetensors"), ("y", "b.safetensors")]))
        let error = safeTensorsError { try SafeTensorsCheckpoint(folder: directory) }
        XCTAssertEqual(error, .missingShard(path: directory + "/b.safetensors", tensor: "y"))
        XCTAssertTrue(error?.description.hasPrefix(directory + "/b.safetensors: ") ?? false)
    }

    func testRejectsTensorMissingFromItsShard() throws {
        try writeFile(directory + "/a.safetensors", shard(["x"]))
        try writeFile(directory + "/b.safetensors", shard(["z"]))
        try writeIndex(weightMap([("x", "a.safetensors"), ("y", "b.safetensors")]))
        XCTAssertEqual(safeTensorsError { try SafeTensorsCheckpoint(folder: directory) },
                       .tensorMissingFromShard(path: directory + "/b.safetensors", tensor: "y"))
    }

    func testRejectsTensorStoredInTwoShards() throws {
        try writeFile(directory + "/a.safetensors", shard(["x", "dup"]))
        try writeFile(directory + "/b.safetensors", shard(["dup", "y"]))
        try writeIndex(weightMap([("x", "a.safetensors"), ("dup", "b.safetensors"), ("y", "b.safetensors")]))
        XCTAssertEqual(safeTensorsError { try SafeTensorsCheckpoint(folder: directory) },
                       .tensorInTwoShards(tensor: "dup", first: directory + "/a.safetensors", second: directory + "/b.safetensors"))
    }

    func testRejectsTensorListedTwiceInTheWeightMap() throws {
        try writeFile(directory + "/a.safetensors", shard(["x"]))
        try writeIndex(weightMap([("x", "a.safetensors"), ("x", "a.safetensors")]))
        guard case .badIndex(directory + "/model.safetensors.index.json", _)? = safeTensorsError({ try SafeTensorsCheckpoint(folder: directory) }) else {
            return XCTFail("expected badIndex")
        }
    }

    func testRejectsIndexThatIsNotJSON() throws {
        try writeIndex(#"{"weight_map": {"x": "a.safetensors",}}"#)
        guard case .indexNotJSON(directory + "/model.safetensors.index.json", _)? = safeTensorsError({ try SafeTensorsCheckpoint(folder: directory) }) else {
            return XCTFail("expected indexNotJSON")
        }
    }

    func testRejectsIndexWithoutAUsableWeightMap() throws {
        for text in [#"{"metadata":{}}"#, #"{"weight_map":[]}"#, #"{"weight_map":{}}"#, #"{"weight_map":{"x":3}}"#,
                     #"{"weight_map":{"x":"../a.safetensors"}}"#, "[]"] {
            try writeIndex(text)
            guard case .badIndex(directory + "/model.safetensors.index.json", _)? = safeTensorsError({ try SafeTensorsCheckpoint(folder: directory) }) else {
                return XCTFail("expected badIndex for \(text)")
            }
        }
    }

    func testRejectsMalformedShardWithItsOwnPath() throws {
        try writeFile(directory + "/a.safetensors", [1, 2, 3])
        try writeIndex(weightMap([("x", "a.safetensors")]))
        XCTAssertEqual(safeTensorsError { try SafeTensorsCheckpoint(folder: directory) },
                       .fileTooSmall(path: directory + "/a.safetensors", size: 3))
    }

    func testRejectsFolderWithoutWeights() throws {
        try writeFile(directory + "/config.json", Array("{}".utf8))
        XCTAssertEqual(safeTensorsError { try SafeTensorsCheckpoint(folder: directory) }, .noWeights(folder: directory))
    }

    func testRejectsPathThatIsNotAFolder() throws {
        XCTAssertEqual(safeTensorsError { try SafeTensorsCheckpoint(folder: directory + "/absent") }, .notAFolder(path: directory + "/absent"))
        let plain = Fixtures.path("ouro-tiny-a/config.json")
        XCTAssertEqual(safeTensorsError { try SafeTensorsCheckpoint(folder: plain) }, .notAFolder(path: plain))
    }
}
