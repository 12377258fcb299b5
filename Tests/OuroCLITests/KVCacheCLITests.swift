import Foundation
import OuroTestSupport
import XCTest

/// --kv-type, --kv-share, --ctx and validate --decode-path through the built binary.
final class KVCacheCLITests: XCTestCase {
    func testAContextPastCtxOrTheModelIsRefusedWithOneLineAndExit2() throws {
        let tiny = Fixtures.folder("ouro-tiny-a")
        let cases: [([String], String)] = [
            (["generate", tiny, "--tokens", "1,2,3", "--max-new", "8", "--ctx", "6"], "exceed the context limit of 6 (--ctx)"),
            (["generate", tiny, "--tokens", "1,2,3", "--ctx", "70000"], "max_position_embeddings"),
            (["generate", tiny, "--tokens", "1,2,3", "--kv-type", "q8_0"], "head_dim"),
            (["bench", tiny, "--prompt", "8", "--ctx", "4"], "exceed the context limit of 4 (--ctx)"),
        ]
        for (arguments, mention) in cases {
            let result = try CLI.run(arguments)
            XCTAssertEqual(result.status, 2, "\(arguments): \(result.stderr)")
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, "\(arguments): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains(mention), "\(arguments): \(result.stderr)")
        }
        XCTAssertEqual(try CLI.run(["generate", tiny, "--tokens", "1,2", "--kv-type", "f8"]).status, 2)
        XCTAssertEqual(try CLI.run(["generate", tiny, "--tokens", "1,2", "--kv-share", "first"]).status, 2)
        XCTAssertEqual(try CLI.run(["generate", tiny, "--tokens", "1,2", "--no-cache", "--kv-type", "f32"]).status, 2)
    }

    func testEveryCacheTypeAndModeGenerates() throws {
        let trained = Fixtures.folder("ouro-trained-s")
        let exact = try CLI.run(["generate", trained, "--tokens", "5,17,3,9", "--max-new", "6", "--kv-type", "f32"])
        XCTAssertEqual(exact.status, 0, exact.stderr)
        for type in ["f32", "f16", "q8_0"] {
            for share in ["full", "last", "mean"] {
                let result = try CLI.run(["generate", trained, "--tokens", "5,17,3,9", "--max-new", "6",
                                          "--kv-type", type, "--kv-share", share, "--ctx", "10"])
                XCTAssertEqual(result.status, 0, "\(type) \(share): \(result.stderr)")
                XCTAssertEqual(result.stdout.split(separator: ",").count, 6, result.stdout)
            }
        }
    }

    func testDecodePathWithAnExactCacheMatchesPyTorchAtEveryPosition() throws {
        let folder = Fixtures.folder("ouro-trained-s")
        let result = try CLI.run(["validate", folder, "--reference", folder + "/reference.safetensors", "--decode-path",
                                  "--decode-prefill", "2", "--kv-type", "f32", "--json"])
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        let decode = try XCTUnwrap(json["decode_path"] as? [String: Any])
        let final = json["final"] as! [String: Any]
        for key in final.keys { XCTAssertNotNil(decode[key], "decode_path has final's key \(key)") }
        XCTAssertEqual(decode["kv_cache"] as? String, "f32, full sharing")
        XCTAssertEqual(decode["positions"] as? Int, json["token_count"] as? Int)
        XCTAssertLessThan(decode["max_abs_logit_error"] as! Double, 1e-3)
        let steps = try XCTUnwrap(decode["steps"] as? [[String: Any]])
        XCTAssertEqual(steps.count, 4)
        for step in steps { XCTAssertLessThan(step["max_abs_logit_error"] as! Double, 1e-3, "\(step)") }
    }
}
