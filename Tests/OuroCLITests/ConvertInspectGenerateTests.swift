import Foundation
import GGUF
import OuroTestSupport
import SafeTensors
import XCTest

final class ConvertInspectGenerateTests: XCTestCase {
    func testHelpListsEverySubcommandAndTheExitCodes() throws {
        let help = try CLI.run(["--help"])
        XCTAssertEqual(help.status, 0)
        for word in ["convert", "inspect", "generate", "Exit codes"] {
            XCTAssertTrue(help.stdout.contains(word), "missing \(word) in:\n\(help.stdout)")
        }
        let convertHelp = try CLI.run(["convert", "--help"])
        XCTAssertTrue(convertHelp.stdout.contains("q4_0"), convertHelp.stdout)
    }

    func testConvertWritesAFileAndInspectListsIt() throws {
        let out = try Fixtures.temporaryFolder() + "/tiny-b.gguf"
        let convert = try CLI.run(["convert", Fixtures.folder("ouro-tiny-b"), "--output", out, "--type", "q4_0"])
        XCTAssertEqual(convert.status, 0, convert.stderr)
        XCTAssertTrue(convert.stdout.contains("wrote \(out)"), convert.stdout)
        XCTAssertTrue(convert.stdout.contains("4.50 bits per weight"), convert.stdout)
        XCTAssertEqual(convert.stderr, "", "no progress line when stderr is not a terminal")

        let inspect = try CLI.run(["inspect", out, "--json"])
        XCTAssertEqual(inspect.status, 0, inspect.stderr)
        let json = try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as! [String: Any]
        let tensors = json["tensors"] as! [[String: Any]]
        XCTAssertEqual(tensors.count, try GGUFFile(path: out).tensors.count)
        let q = tensors.first { $0["name"] as? String == "blk.0.attn_k.weight" }!
        XCTAssertEqual(q["type"] as? String, "Q4_0")
        XCTAssertEqual(q["shape"] as? [Int], [32, 128])   // outermost first: kv heads 2 x 16, hidden 128
    }

    func testConvertJSONReportsTypeBitsAndLosslessness() throws {
        let out = try Fixtures.temporaryFolder() + "/a.gguf"
        let result = try CLI.run(["convert", Fixtures.folder("ouro-tiny-a"), "-o", out, "--type", "bf16", "--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(json["type"] as? String, "bf16")
        XCTAssertEqual(json["bits_per_weight"] as? Double, 16)
        XCTAssertEqual(json["lossless"] as? Bool, true)
    }

    func testGenerateFromCheckpointAndConvertedFileMatchesTheReferenceTokens() throws {
        let folder = Fixtures.folder("ouro-tiny-a")
        let bundle = try ReferenceTokens(folder: folder)
        let out = try Fixtures.temporaryFolder() + "/a.gguf"
        XCTAssertEqual(try CLI.run(["convert", folder, "-o", out, "--type", "f32"]).status, 0)
        for model in [folder, out] {
            for extra in [[String](), ["--no-cache"]] {
                let result = try CLI.run(["generate", model, "--tokens", bundle.prompt.map(String.init).joined(separator: ","),
                                          "--max-new", "12"] + extra)
                XCTAssertEqual(result.status, 0, result.stderr)
                XCTAssertEqual(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines),
                               bundle.greedy.map(String.init).joined(separator: ","), "\(model) \(extra)")
            }
        }
    }

    func testBadInputIsOneLineOnStderrWithExitCode2AndNoOutputFile() throws {
        let folder = try Fixtures.temporaryFolder()
        let out = folder + "/x.gguf"
        let cases: [([String], String)] = [
            (["convert", folder + "/missing", "-o", out], "config.json"),
            (["convert", Fixtures.folder("ouro-tiny-a"), "-o", folder + "/no/dir/x.gguf"], "no/dir/x.gguf"),
            (["inspect", folder + "/nothing.gguf"], "nothing.gguf"),
            (["inspect", Fixtures.folder("ouro-tiny-a") + "/config.json"], "config.json"),
            (["generate", Fixtures.folder("ouro-tiny-a"), "--tokens", "1,2,99999"], "99999"),
        ]
        for (arguments, mention) in cases {
            let result = try CLI.run(arguments)
            XCTAssertEqual(result.status, 2, "\(arguments): \(result.stderr)")
            let lines = result.stderr.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, "\(arguments): \(result.stderr)")
            XCTAssertTrue(result.stderr.hasPrefix("ouro: "), result.stderr)
            XCTAssertTrue(result.stderr.contains(mention), "\(arguments): \(result.stderr)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), [])
    }

    func testUsageErrorsExitWith2() throws {
        XCTAssertEqual(try CLI.run(["convert"]).status, 2)
        XCTAssertEqual(try CLI.run(["convert", "x", "-o", "y", "--type", "q3_x"]).status, 2)
        XCTAssertEqual(try CLI.run(["generate", "x", "--tokens", "a,b"]).status, 2)
        XCTAssertEqual(try CLI.run(["frobnicate"]).status, 2)
    }
}

/// The first prompt of a fixture's reference bundle and its greedy continuation, read with the library.
struct ReferenceTokens {
    let prompt: [Int]
    let greedy: [Int]

    init(folder: String) throws {
        let bundle = try SafeTensorsFile(path: folder + "/reference.safetensors")
        prompt = try bundle.int64s("p0.input_ids").map { Int($0) }
        greedy = try bundle.int64s("p0.greedy_cached").map { Int($0) }
    }
}
