import Foundation
import OuroTestSupport
import XCTest

/// OURO_WEIGHTS and `ouro bench --weights`: where a GGUF model's weights live. Both residencies give
/// the same logits (the same bytes), bench's JSON names the one used, and a bad value is one line, exit 2.
final class WeightsResidencyCLITests: XCTestCase {
    private var folder = ""
    private let trained = Fixtures.folder("ouro-trained-s")

    override func setUpWithError() throws { folder = try Fixtures.temporaryFolder() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    func testBothResidenciesGenerateTheSameTokensAndBenchNamesTheOneUsed() throws {
        let model = folder + "/trained-q4_0.gguf"
        XCTAssertEqual(try CLI.run(["convert", trained, "-o", model, "--type", "q4_0"]).status, 0)
        var outputs: [String] = []
        for residency in ["mapped", "huge-pages"] {
            let run = try CLI.run(["generate", model, "--tokens", "72,107,118,35", "--max-new", "12", "--json"],
                                  environment: ["OURO_WEIGHTS": residency])
            XCTAssertEqual(run.status, 0, run.stderr)
            outputs.append(run.stdout)
            let bench = try CLI.run(["bench", model, "--prompt", "4", "--generate", "2", "--json"], environment: ["OURO_WEIGHTS": residency])
            XCTAssertEqual(bench.status, 0, bench.stderr)
            let report = try JSONSerialization.jsonObject(with: Data(bench.stdout.utf8)) as! [String: Any]
            #if os(Linux)
            XCTAssertEqual(report["weights"] as? String, residency)
            #else
            XCTAssertEqual(report["weights"] as? String, "mapped")
            #endif
        }
        let tokens = try outputs.map { (try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any])["generated"] as? [Int] }
        XCTAssertNotNil(tokens[0])
        XCTAssertEqual(tokens[0], tokens[1])

        let bad = try CLI.run(["inspect", model], environment: ["OURO_WEIGHTS": "hugepages"])
        XCTAssertEqual(bad.status, 2)
        XCTAssertEqual(bad.stderr, "ouro: OURO_WEIGHTS is huge-pages or mapped, not 'hugepages'\n")
        let badFlag = try CLI.run(["bench", model, "--weights", "copy"])
        XCTAssertEqual(badFlag.status, 2)
        XCTAssertTrue(badFlag.stderr.contains("--weights"), badFlag.stderr)
    }
}
