import Foundation
import OuroTestSupport
import SafeTensors
import XCTest

/// `generate --speculate / --exit threshold:Q` on the trained fixture against the PyTorch reference's
/// greedy continuations.
final class AdaptiveDepthCLITests: XCTestCase {
    static let model = Fixtures.folder("ouro-trained-s")

    private func json(_ arguments: [String]) throws -> [String: Any] {
        let result = try CLI.run(arguments)
        XCTAssertEqual(result.status, 0, "\(arguments) \(result.stderr)")
        return try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
    }

    func testSpeculativeGreedyGivesTheReferenceGreedyTokens() throws {
        let bundle = try SafeTensorsFile(path: Self.model + "/reference.safetensors")
        let prompt = try bundle.int64s("p3.input_ids").map { String($0) }.joined(separator: ",")
        let greedy = try bundle.int64s("p3.greedy_cached").map { Int($0) }
        for (k, d) in [("3", "1")] {
            let output = try json(["generate", Self.model, "--tokens", prompt, "--max-new", String(greedy.count), "--exit", "last",
                                   "--speculate", k, "--draft-steps", d, "--json"])
            XCTAssertEqual(output["generated"] as? [Int], greedy, "K=\(k) D=\(d)")
            let rate = try XCTUnwrap(output["acceptance_rate"] as? Double)
            XCTAssertTrue((0...1).contains(rate))
        }
        // One thread: the same tokens, and the decode's CPU time next to its wall time.
        let single = try json(["generate", Self.model, "--tokens", prompt, "--max-new", String(greedy.count), "--exit", "last",
                               "--speculate", "2", "--draft-steps", "1", "--threads", "1", "--json"])
        XCTAssertEqual(single["generated"] as? [Int], greedy)
        let cpu = try XCTUnwrap(single["decode_cpu_seconds"] as? Double)
        XCTAssertTrue(cpu > 0, "\(cpu)")
    }

    func testEarlyExitReportsItsMeanLoopSteps() throws {
        let prompt = "35,105,120,119,49,118,104,119"
        let early = try json(["generate", Self.model, "--tokens", prompt, "--max-new", "8", "--exit", "threshold:0.5", "--json"])
        let steps = try XCTUnwrap(early["mean_loop_steps"] as? Double)
        XCTAssertTrue(steps >= 1 && steps <= 4, "\(steps)")
        let full = try json(["generate", Self.model, "--tokens", prompt, "--max-new", "8", "--exit", "threshold:0.5", "--full-depth", "--json"])
        XCTAssertEqual(full["mean_loop_steps"] as? Double, 4)
        // The first token comes from the prompt pass, which always runs every step.
        XCTAssertEqual((early["generated"] as? [Int])?.first, (full["generated"] as? [Int])?.first)
    }

    func testEarlyExitRunsUnderSharedKV() throws {
        // last/mean: the exited token's kept K/V is its exit step's; the loop stops early there too.
        let prompt = "35,105,120,119,49,118,104,119"
        for share in ["last", "mean"] {
            let early = try json(["generate", Self.model, "--tokens", prompt, "--max-new", "16", "--exit", "threshold:0.5",
                                  "--kv-share", share, "--json"])
            let steps = try XCTUnwrap(early["mean_loop_steps"] as? Double)
            XCTAssertTrue(steps >= 1 && steps < 4, "\(share): \(steps)")
        }
    }

    func testAdaptiveDepthOptionMisuseIsAUsageError() throws {
        let cases: [([String], String)] = [
            (["--draft-steps", "2"], "'--draft-steps' applies to '--speculate K' only"),
            (["--speculate", "2", "--exit", "threshold:0.5"], "add '--full-depth'"),
            (["--full-depth"], "'--full-depth' applies to '--exit threshold:Q' only"),
            (["--speculate=-1"], "'--speculate' must be 0 or more"),
            (["--speculate", "2", "--no-cache"], "need the KV cache"),
            (["--speculate", "2", "--kv-share", "mean"], "'--speculate' needs '--kv-share full'"),
            (["--threads", "0"], "'--threads' must be 1 or more"),
        ]
        for (extra, mention) in cases {
            let result = try CLI.run(["generate", Self.model, "--tokens", "1,2"] + extra)
            XCTAssertEqual(result.status, 2, "\(extra): \(result.stderr)")
            XCTAssertTrue(result.stderr.split(separator: "\n").first?.contains(mention) ?? false, "\(extra): \(result.stderr)")
        }
        let tooDeep = try CLI.run(["generate", Self.model, "--tokens", "1,2", "--speculate", "2", "--draft-steps", "4"])
        XCTAssertEqual(tooDeep.status, 2)
        XCTAssertEqual(tooDeep.stderr.split(separator: "\n").count, 1, tooDeep.stderr)
        XCTAssertTrue(tooDeep.stderr.contains("'--draft-steps' is 4"), tooDeep.stderr)
    }
}

/// `validate --decode-path --early-exit threshold:Q`: the JSON keys and the usage errors.
final class ValidateEarlyExitCLITests: XCTestCase {
    static let model = Fixtures.folder("ouro-tiny-a")

    func testEarlyExitOnTheDecodePathReportsLoopStepsAndAgreement() throws {
        let result = try CLI.run(["validate", Self.model, "--reference", Self.model + "/reference.safetensors",
                                  "--decode-path", "--decode-prefill", "4", "--early-exit", "threshold:0", "--json"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let report = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let early = try XCTUnwrap((report["decode_path"] as? [String: Any])?["early_exit"] as? [String: Any])
        XCTAssertEqual(early["mean_loop_steps"] as? Double, 1)
        XCTAssertEqual(early["max_loop_steps"] as? Int, 1)
        XCTAssertEqual(early["threshold"] as? Double, 0)
        let vsFull = try XCTUnwrap(early["vs_full_depth"] as? [String: Any])
        XCTAssertNotNil(vsFull["kld_mean"] as? Double)
        XCTAssertNotNil(vsFull["top1_agreement"] as? Double)
    }

    func testBadEarlyExitValuesAreOneLineUsageErrors() throws {
        let reference = Self.model + "/reference.safetensors"
        let cases: [[String]] = [
            ["--decode-path", "--early-exit", "threshold:1.5"],
            ["--decode-path", "--early-exit", "threshold:-0.1"],
            ["--decode-path", "--early-exit", "0.5"],
            ["--decode-path", "--early-exit", "last"],
            ["--early-exit", "threshold:0.5"],
        ]
        for extra in cases {
            let result = try CLI.run(["validate", Self.model, "--reference", reference] + extra)
            XCTAssertEqual(result.status, 2, "\(extra): \(result.stderr)")
            XCTAssertTrue(result.stderr.split(separator: "\n").first?.contains("--early-exit") ?? false, "\(extra): \(result.stderr)")
        }
    }
}
