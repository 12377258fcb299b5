import Foundation
import OuroTestSupport
import XCTest

/// `ouro reference`, `ouro validate` with several files, `--baseline` and `--html`.
final class ReferenceCommandTests: XCTestCase {
    private var folder = ""
    private let trained = Fixtures.folder("ouro-trained-s")

    override func setUpWithError() throws { folder = try Fixtures.temporaryFolder() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    private func converted(_ type: String) throws -> String {
        let out = folder + "/trained-\(type).gguf"
        let result = try CLI.run(["convert", trained, "-o", out, "--type", type])
        XCTAssertEqual(result.status, 0, result.stderr)
        return out
    }

    private func write(_ text: String, _ name: String) throws -> String {
        let path = folder + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private func json(_ text: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
    }

    /// Python-like text for the byte-level tokenizer of the trained fixture (id = byte + 3).
    private let pythonText = String(repeating: """
        def handle(self, request):
            if request is None or not request.ok:
                return self.fail(request)
            for key, value in sorted(request.items()):
                self.values[key] = value
            return True

        """, count: 4)

    private func smallReference() throws -> String {
        let prompts = try write("[\"def f(x):\\n    return x\", [72, 107, 118, 35, 106, 111, 110]]", "prompts.json")
        let out = folder + "/ref.safetensors.zst"
        let result = try CLI.run(["reference", trained, "--prompts", prompts, "-o", out, "--greedy", "3"])
        XCTAssertEqual(result.status, 0, result.stderr)
        return out
    }

    func testReferenceBundleOfTheCheckpointValidatesItLosslessly() throws {
        let bundle = try smallReference()
        let result = try CLI.run(["validate", trained, "--reference", bundle, "--json"])
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        let report = try json(result.stdout)
        XCTAssertEqual(report["bundle_declares_format"] as? Bool, true)
        XCTAssertEqual(report["prompt_count"] as? Int, 2)
        // The string prompt went through the byte tokenizer: 22 bytes -> 22 tokens; the ids as given.
        XCTAssertEqual(report["token_count"] as? Int, 22 + 7)
        let final = report["final"] as! [String: Any]
        XCTAssertEqual(final["max_abs_logit_error"] as? Double, 0)
        for key in ["kld_mean_stderr", "kld_median", "kld_p90", "kld_p95", "kld_p999", "top1_agreement_stderr"] {
            XCTAssertNotNil(final[key], key)
            XCTAssertNotNil((report["steps"] as! [[String: Any]])[0][key], key)
        }
        // Labels: each position's next prompt token, the last one unscored.
        XCTAssertEqual((report["perplexity"] as! [String: Any])["tokens"] as? Int, 21 + 6)
    }

    func testReferenceRefusesALossyModelWithOneLine() throws {
        let q4 = try converted("q4_0")
        let prompts = try write("[[5, 6, 7]]", "p.json")
        let out = folder + "/never.safetensors"
        let result = try CLI.run(["reference", q4, "--prompts", prompts, "-o", out])
        XCTAssertEqual(result.status, 2)
        XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
        XCTAssertTrue(result.stderr.contains(q4) && result.stderr.contains("--allow-lossy"), result.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        let allowed = try CLI.run(["reference", q4, "--prompts", prompts, "-o", out, "--allow-lossy", "--greedy", "0"])
        XCTAssertEqual(allowed.status, 0, allowed.stderr)

        for bad in [["reference", trained, "-o", out],
                    ["reference", trained, "--prompts", prompts, "--text-file", prompts, "-o", out],
                    ["reference", trained, "--prompts", prompts, "--chunks", "2", "-o", out],
                    ["reference", trained, "--prompts", try write("[[5, 999]]", "big.json"), "-o", out],
                    ["reference", trained, "--prompts", try write("{\"a\": 1}", "obj.json"), "-o", out],
                    ["validate", q4, "--reference", out, "--html", folder + "/r.html", "--tokenizer", folder + "/none.json"],
                    ["validate", q4],
                    ["validate", q4, "--baseline", trained]] {
            let r = try CLI.run(bad)
            XCTAssertEqual(r.status, 2, "\(bad): \(r.stderr)")
        }
    }

    func testSeveralFilesGiveTheSameNumbersAsOneAtATime() throws {
        let bundle = try smallReference()
        let q4 = try converted("q4_0"), q8 = try converted("q8_0")
        let both = try CLI.run(["validate", q4, q8, "--reference", bundle, "--json"])
        XCTAssertEqual(both.status, 0, both.stderr)
        let models = try json(both.stdout)["models"] as! [[String: Any]]
        XCTAssertEqual(models.count, 2)
        for (i, path) in [q4, q8].enumerated() {
            let alone = try json(try CLI.run(["validate", path, "--reference", bundle, "--json"]).stdout)
            XCTAssertEqual(models[i]["model_file"] as? String, path)
            for key in ["final", "steps", "exit", "greedy", "perplexity"] {
                XCTAssertEqual(models[i][key] as? NSObject, alone[key] as? NSObject, "\(path): \(key)")
            }
        }
        let table = try CLI.run(["validate", q4, q8, "--reference", bundle])
        XCTAssertEqual(table.status, 0, table.stderr)
        let lines = table.stdout.split(separator: "\n")
        XCTAssertTrue(lines.contains { $0.hasPrefix(q4) && $0.contains("Q4_0") && $0.contains(" ± ") }, table.stdout)
        XCTAssertTrue(lines.contains { $0.hasPrefix(q8) && $0.contains("Q8_0") }, table.stdout)
        XCTAssertEqual(lines.filter { $0.hasPrefix("OK: ") }.count, 2, table.stdout)
    }

    /// A baseline run on the fly gives exactly what a bundle of the same windows gives.
    func testBaselineOnTextMatchesABundleOfTheSameWindows() throws {
        let text = try write(pythonText, "code.txt")
        let q4 = try converted("q4_0")
        let live = try CLI.run(["validate", q4, "--baseline", trained, "--text-file", text, "--ctx", "64", "--chunks", "3", "--json"])
        XCTAssertEqual(live.status, 0, live.stderr)
        let bundle = folder + "/text.safetensors"
        let made = try CLI.run(["reference", trained, "--text-file", text, "--ctx", "64", "--chunks", "3", "-o", bundle])
        XCTAssertEqual(made.status, 0, made.stderr)
        let stored = try CLI.run(["validate", q4, "--reference", bundle, "--json"])
        XCTAssertEqual(stored.status, 0, stored.stderr)
        let a = try json(live.stdout), b = try json(stored.stdout)
        XCTAssertEqual(a["prompt_count"] as? Int, 3)
        XCTAssertEqual(a["token_count"] as? Int, 192)
        // llama-perplexity scores positions 32..<63 of each window.
        XCTAssertEqual((a["perplexity"] as! [String: Any])["tokens"] as? Int, 3 * 31)
        XCTAssertEqual(a["final"] as? NSObject, b["final"] as? NSObject)
        XCTAssertEqual(a["perplexity"] as? NSObject, b["perplexity"] as? NSObject)
    }

    /// `--tokens` (one sequence of ids per line) scores exactly what `--prompts` does with the same ids.
    func testBaselineOnTokenLinesMatchesTheSamePromptsAsJSON() throws {
        let ids = pythonText.utf8.map { Int($0) + 3 }   // the trained fixture's byte-level vocabulary
        let sequences = [Array(ids[0..<40]), Array(ids[40..<90])]
        let lines = try write("\n" + sequences.map { $0.map(String.init).joined(separator: ", ") }.joined(separator: "\n\n") + "\n", "ids.txt")
        let prompts = try write("[" + sequences.map { "[" + $0.map(String.init).joined(separator: ",") + "]" }.joined(separator: ",") + "]", "ids.json")
        let q4 = try converted("q4_0")
        let fromLines = try CLI.run(["validate", q4, "--baseline", trained, "--tokens", lines, "--json"])
        XCTAssertEqual(fromLines.status, 0, fromLines.stderr)
        let fromJSON = try CLI.run(["validate", q4, "--baseline", trained, "--prompts", prompts, "--json"])
        XCTAssertEqual(fromJSON.status, 0, fromJSON.stderr)
        let a = try json(fromLines.stdout), b = try json(fromJSON.stdout)
        XCTAssertEqual(a["prompt_count"] as? Int, 2)
        XCTAssertEqual((a["perplexity"] as! [String: Any])["tokens"] as? Int, 39 + 49)
        for key in ["final", "steps", "perplexity", "kld_growth"] {
            XCTAssertEqual(a[key] as? NSObject, b[key] as? NSObject, key)
        }
        let steps = a["steps"] as! [[String: Any]]
        let first = steps.first!["kld_mean"] as! Double, last = steps.last!["kld_mean"] as! Double
        XCTAssertGreaterThan(first, 0)
        XCTAssertEqual(a["kld_growth"] as! Double, last / first, accuracy: 1e-12 * last / first)
        let text = try CLI.run(["validate", q4, "--baseline", trained, "--tokens", lines])
        XCTAssertTrue(text.stdout.contains(String(format: "KLD growth from loop step 1 to %d: %.2fx", steps.count, last / first)), text.stdout)

        for (content, problem) in [("5, 6\n7, x9\n", "line 2: 'x9' is not a token id"),
                                   ("5 6 99999\n", "line 1: token 99999 is not below the vocabulary size"),
                                   ("\n \n", "holds no token sequences")] {
            let bad = try write(content, "bad.txt")
            let r = try CLI.run(["validate", q4, "--baseline", trained, "--tokens", bad])
            XCTAssertEqual(r.status, 2, r.stderr)
            XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
            XCTAssertTrue(r.stderr.contains(bad) && r.stderr.contains(problem), r.stderr)
        }
        for conflict in [["validate", q4, "--reference", prompts, "--tokens", lines],
                         ["validate", q4, "--baseline", trained, "--tokens", lines, "--prompts", prompts]] {
            XCTAssertEqual(try CLI.run(conflict).status, 2, "\(conflict)")
        }
    }

    func testHTMLReportIsSelfContainedAndRendersInChromium() throws {
        let bundle = try smallReference()
        let q4 = try converted("q4_0"), q8 = try converted("q8_0")
        let html = folder + "/report.html"
        let result = try CLI.run(["validate", q4, q8, "--reference", bundle, "--html", html])
        XCTAssertEqual(result.status, 0, result.stderr)
        let page = try String(contentsOfFile: html, encoding: .utf8)
        XCTAssertTrue(page.hasPrefix("<!DOCTYPE html>"))
        XCTAssertEqual(page.components(separatedBy: "<svg").count - 1, 4, "four charts")
        XCTAssertTrue(page.contains("Worst positions"))
        XCTAssertTrue(page.contains(q4) && page.contains(q8))
        for external in ["src=", "href=", "@import", "url("] { XCTAssertFalse(page.contains(external), external) }

        guard let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first(where: FileManager.default.isExecutableFile) else {
            throw XCTSkip("chromium is not installed (apt-get install chromium)")
        }
        let png = folder + "/report.png"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: chromium)
        process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,1400",
                             "--screenshot=\(png)", "file://\(html)"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        let data = try Data(contentsOf: URL(fileURLWithPath: png))
        XCTAssertEqual(Array(data.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], "PNG signature")
        func be32(_ at: Int) -> Int { data[at..<at + 4].reduce(0) { $0 << 8 | Int($1) } }
        XCTAssertEqual(be32(16), 1280)
        XCTAssertEqual(be32(20), 1400)
        // A blank or error page of this size compresses to a few KiB; charts, tables and text do not.
        XCTAssertGreaterThan(data.count, 60_000, "screenshot looks empty")
    }
}
