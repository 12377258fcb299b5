import Foundation
import OuroTestSupport
import XCTest

/// Hostile files through the command line: every cut of a model file gives exit 2, one line on stderr
/// naming the file, and no output left behind.
final class MalformedInputTests: XCTestCase {
    private func assertBadInput(_ arguments: [String], names file: String, _ what: String) throws {
        let result = try CLI.run(arguments)
        XCTAssertEqual(result.status, 2, "\(what): \(result.stderr)")
        XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, "\(what): \(result.stderr)")
        XCTAssertTrue(result.stderr.contains(file), "\(what): \(result.stderr)")
    }

    func testTruncatedGGUFFilesAreRejectedEverywhere() throws {
        let folder = try Fixtures.temporaryFolder()
        let good = folder + "/good.gguf"
        XCTAssertEqual(try CLI.run(["convert", Fixtures.folder("ouro-tiny-a"), "-o", good, "--type", "q8_0"]).status, 0)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: good))
        let cut = folder + "/cut.gguf"
        // Inside the magic, the counts, the metadata, the tensor table and the data section.
        for length in [0, 3, 10, 30, 200, 1000, 2500, bytes.count / 2, bytes.count - 100] {
            try bytes.prefix(length).write(to: URL(fileURLWithPath: cut))
            try assertBadInput(["inspect", cut], names: cut, "inspect cut at \(length)")
            try assertBadInput(["generate", cut, "--tokens", "1,2"], names: cut, "generate cut at \(length)")
            try assertBadInput(["validate", cut, "-r", Fixtures.folder("ouro-tiny-a") + "/reference.safetensors"],
                               names: cut, "validate cut at \(length)")
        }
    }

    func testTruncatedOrCorruptCheckpointsConvertToNothing() throws {
        let source = try Data(contentsOf: URL(fileURLWithPath: Fixtures.folder("ouro-tiny-a") + "/model.safetensors"))
        let config = try Data(contentsOf: URL(fileURLWithPath: Fixtures.folder("ouro-tiny-a") + "/config.json"))
        var cases: [(String, Data, Data)] = []
        for length in [0, 7, 8, 100, source.count / 2, source.count - 1] {
            cases.append(("safetensors cut at \(length)", source.prefix(length), config))
        }
        var hugeHeader = source
        hugeHeader.replaceSubrange(0..<8, with: [0, 0, 0, 0, 0, 0, 0, 0x80])   // 2^63
        cases.append(("header length 2^63", hugeHeader, config))
        cases.append(("config not JSON", source, Data("{not json".utf8)))
        cases.append(("config with zero loops", source,
                      Data(String(decoding: config, as: UTF8.self)
                        .replacingOccurrences(of: "\"total_ut_steps\": 4", with: "\"total_ut_steps\": 0").utf8)))
        cases.append(("config with more layers", source,
                      Data(String(decoding: config, as: UTF8.self)
                        .replacingOccurrences(of: "\"num_hidden_layers\": 2", with: "\"num_hidden_layers\": 3").utf8)))
        for (what, weights, configData) in cases {
            let folder = try Fixtures.temporaryFolder()
            try weights.write(to: URL(fileURLWithPath: folder + "/model.safetensors"))
            try configData.write(to: URL(fileURLWithPath: folder + "/config.json"))
            let out = folder + "/out.gguf"
            try assertBadInput(["convert", folder, "-o", out], names: folder, what)
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder).sorted(),
                           ["config.json", "model.safetensors"], what)
        }
    }
}
