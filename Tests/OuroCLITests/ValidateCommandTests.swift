import Foundation
import GGUF
import OuroTestSupport
import XCTest

final class ValidateCommandTests: XCTestCase {
    private func converted(_ fixture: String, _ type: String) throws -> String {
        let out = try Fixtures.temporaryFolder() + "/\(fixture)-\(type).gguf"
        let result = try CLI.run(["convert", Fixtures.folder(fixture), "-o", out, "--type", type])
        XCTAssertEqual(result.status, 0, result.stderr)
        return out
    }

    func testLosslessFilePassesWithExitZeroAndReportsByLoopStep() throws {
        let folder = Fixtures.folder("ouro-tiny-b")
        let result = try CLI.run(["validate", try converted("ouro-tiny-b", "f32"), "--reference", folder + "/reference.safetensors"])
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.contains("by loop step"), result.stdout)
        XCTAssertTrue(result.stdout.split(separator: "\n").last?.hasPrefix("OK: ") ?? false, result.stdout)
    }

    func testJSONHasTheDocumentedKeys() throws {
        let folder = Fixtures.folder("ouro-tiny-a")
        let result = try CLI.run(["validate", folder, "--reference", folder + "/reference.safetensors", "--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        XCTAssertEqual(json["pass"] as? Bool, true)
        let final = json["final"] as! [String: Any]
        for key in ["max_abs_logit_error", "kld_mean", "kld_p99", "kld_max", "top1_agreement"] {
            XCTAssertNotNil(final[key], key)
        }
        XCTAssertLessThan(final["max_abs_logit_error"] as! Double, 1e-3)
        let steps = json["steps"] as! [[String: Any]]
        XCTAssertEqual(steps.map { $0["step"] as? Int }, [1, 2, 3, 4])
        let exit = json["exit"] as! [String: Any]
        XCTAssertLessThan(exit["pdf_max_abs_error"] as! Double, 1e-4)
        XCTAssertEqual((exit["threshold_step_agreement"] as! [String: Double])["0.9"], 1)
        let greedy = json["greedy"] as! [String: Any]
        XCTAssertEqual(greedy["match"] as? Bool, true)
        XCTAssertEqual(greedy["tokens_matched"] as? Int, greedy["tokens_total"] as? Int)
    }

    func testStricterLimitsFailWithExitOneAndNameTheCriterion() throws {
        let folder = Fixtures.folder("ouro-tiny-a")
        let result = try CLI.run(["validate", try converted("ouro-tiny-a", "q8_0"), "-r", folder + "/reference.safetensors",
                                  "--max-kld-mean", "1e-9"])
        XCTAssertEqual(result.status, 1, result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.contains("NOT OK: "), result.stdout)
        XCTAssertTrue(result.stdout.contains("KLD mean"), result.stdout)
    }

    func testBundleForAnotherModelIsUnusableInputWithExitTwo() throws {
        let result = try CLI.run(["validate", Fixtures.folder("ouro-tiny-a"),
                                  "-r", Fixtures.folder("ouro-tiny-b") + "/reference.safetensors"])
        XCTAssertEqual(result.status, 2)
        XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains("reference.safetensors"), result.stderr)
    }
}

final class AlteredFileValidationTests: XCTestCase {
    /// A file whose tensor data was changed after conversion still loads (only `verify` reads all the
    /// data), but `validate` fails it and shows where through the loop it goes wrong.
    func testAlteredWeightsFailWithTheDivergingLoopStep() throws {
        let folder = try Fixtures.temporaryFolder()
        let out = folder + "/a.gguf"
        XCTAssertEqual(try CLI.run(["convert", Fixtures.folder("ouro-tiny-a"), "-o", out, "--type", "f32"]).status, 0)
        let file = try GGUFFile(path: out)
        let tensor = try XCTUnwrap(file.tensor("blk.1.ffn_down.weight"))
        var bytes = try Data(contentsOf: URL(fileURLWithPath: out))
        // Scale the first 64 weights of the matrix by 4 (f32, little-endian).
        for i in 0..<64 {
            let at = file.dataOffset + tensor.offset + 4 * i
            let value = Float(bitPattern: bytes[at..<at + 4].enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (8 * $1.offset) })
            withUnsafeBytes(of: (value * 4).bitPattern.littleEndian) { bytes.replaceSubrange(at..<at + 4, with: $0) }
        }
        try bytes.write(to: URL(fileURLWithPath: out))

        let result = try CLI.run(["validate", out, "-r", Fixtures.folder("ouro-tiny-a") + "/reference.safetensors"])
        XCTAssertEqual(result.status, 1, result.stdout + result.stderr)
        let verdict = try XCTUnwrap(result.stdout.split(separator: "\n").last)
        XCTAssertTrue(verdict.hasPrefix("NOT OK: "), String(verdict))
        XCTAssertTrue(verdict.contains("loop step 1"), String(verdict))
        XCTAssertEqual(try CLI.run(["verify", out]).status, 1)
    }
}
