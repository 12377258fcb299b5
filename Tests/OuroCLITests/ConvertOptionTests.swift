import Foundation
import GGUF
import OuroTestSupport
import XCTest

/// No option of `convert` (or `generate`) is silently ignored: a combination where one would do
/// nothing is one line on stderr, exit 2, and no file.
final class ConvertOptionTests: XCTestCase {
    func testOptionsThatWouldBeIgnoredAreOneLineErrors() throws {
        let folder = try Fixtures.temporaryFolder()
        let out = folder + "/x.gguf"
        let model = Fixtures.folder("ouro-tiny-a")
        let cases: [([String], String)] = [
            (["convert", model, "-o", out, "--type", "q4_k", "--bpw", "4.5"], "--bpw"),
            (["convert", model, "-o", out, "--type", "q8_0", "--imatrix"], "--imatrix"),
            (["convert", model, "-o", out, "--type", "f16", "--gptq"], "--gptq"),
            (["convert", model, "-o", out, "--type", "q4_k", "--calibration-tokens", "64"], "--calibration-tokens"),
            (["convert", model, "-o", out, "--type", "q4_0", "--seed", "3"], "--seed"),
            (["convert", model, "-o", out, "--type", "q4_0", "--calibration", "x.txt"], "--calibration"),
            (["convert", model, "-o", out, "--type", "loop", "--calibration", "x.txt", "--seed", "1"], "--seed"),
            (["convert", model, "-o", out, "--bpw", "4.25"], "4.5000"),   // tiny-a's rows are not whole 256-blocks: no candidate below 4.5 fits
        ]
        for (arguments, mention) in cases {
            let result = try CLI.run(arguments)
            XCTAssertEqual(result.status, 2, "\(arguments): \(result.stderr)")
            let lines = result.stderr.split(separator: "\n").filter { !$0.hasPrefix("note:") }
            XCTAssertEqual(lines.count, 1, "\(arguments): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(mention), "\(arguments): \(result.stderr)")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder), [])

        // generate's sampling options are checked while parsing: a usage error (its one-line reason,
        // then ArgumentParser's pointer to --help), exit 2.
        let seedAlone = try CLI.run(["generate", model, "--tokens", "1,2", "--seed", "5"])
        XCTAssertEqual(seedAlone.status, 2, seedAlone.stderr)
        XCTAssertEqual(seedAlone.stderr.split(separator: "\n").first.map(String.init),
                       "Error: '--seed' applies to sampling; add '--temperature' (e.g. 0.7)")
    }

    /// `--bpw` alone runs the loop-aware search (and says so) instead of writing q8_0.
    func testBpwAloneImpliesTheLoopPreset() throws {
        let out = try Fixtures.temporaryFolder() + "/loop.gguf"
        let result = try CLI.run(["convert", Fixtures.folder("ouro-tiny-a"), "-o", out, "--bpw", "5", "--calibration-tokens", "32", "--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stderr.contains("--bpw implies --type loop"), result.stderr)
        let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(json["type"] as? String, "loop")
        XCTAssertEqual(json["gptq"] as? Bool, true)
        let bits = try XCTUnwrap(json["bits_per_weight"] as? Double)
        XCTAssertLessThanOrEqual(bits, 5)
        let file = try GGUFFile(path: out)
        XCTAssertEqual(file.value("ouro.quantization.recipe")?.string, "loop+gptq")
    }
}
