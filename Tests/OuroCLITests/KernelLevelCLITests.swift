import Foundation
import OuroTestSupport
import XCTest

/// OURO_KERNELS: `ouro validate` on the trained fixture converted to every integer-kernel type gives
/// the same numbers within float noise at every kernel level this CPU has (the integer dots are exact
/// on every level; only f32 sums differ, and four loop steps amplify that, see
/// KQuantKernelLevelTests), `ouro bench --json` names the level that ran, and a level that is unknown
/// or that this CPU lacks is a one-line error with exit code 2.
final class KernelLevelCLITests: XCTestCase {
    private var folder = ""
    private let trained = Fixtures.folder("ouro-trained-s")

    override func setUpWithError() throws { folder = try Fixtures.temporaryFolder() }
    override func tearDown() { try? FileManager.default.removeItem(atPath: folder) }

    private func json(_ text: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
    }

    /// Every level name of both architectures, lowest first per architecture.
    private let allLevels = ["scalar", "avx2", "vnni", "avx512", "neon", "dotprod", "i8mm"]

    /// The levels `ouro` accepts in OURO_KERNELS on this CPU (the others are errors, tested below).
    private func levels() throws -> [String] {
        try allLevels.filter { try CLI.run(["inspect", trained], environment: ["OURO_KERNELS": $0]).status == 0 }
    }

    func testValidationIsTheSameAtEveryForcedKernelLevel() throws {
        let types = ["q8_0", "q4_0", "iq4_nl", "q3_k", "q5_k", "iq4_xs"]
        var files: [String] = []
        for type in types {
            let out = folder + "/trained-\(type).gguf"
            let result = try CLI.run(["convert", trained, "-o", out, "--type", type])
            XCTAssertEqual(result.status, 0, result.stderr)
            files.append(out)
        }
        let prompts = folder + "/prompts.json"
        try "[\"def f(x):\\n    return x * 2\\n\", [72, 107, 118, 35, 106, 111, 110, 40, 41]]".write(toFile: prompts, atomically: true, encoding: .utf8)
        let bundle = folder + "/ref.safetensors"
        let made = try CLI.run(["reference", trained, "--prompts", prompts, "-o", bundle, "--greedy", "3"])
        XCTAssertEqual(made.status, 0, made.stderr)

        var runs: [(level: String, models: [[String: Any]])] = []
        for level in try levels() {
            let result = try CLI.run(["validate"] + files + ["--reference", bundle, "--json"], environment: ["OURO_KERNELS": level])
            XCTAssertEqual(result.status, 0, "\(level): \(result.stderr)")
            runs.append((level, try json(result.stdout)["models"] as! [[String: Any]]))
        }
        XCTAssertEqual(runs[0].level, "scalar")
        XCTAssertGreaterThan(runs.count, 1, "only the scalar level: nothing to compare")
        for (i, type) in types.enumerated() {
            let plain = runs[0].models[i]["final"] as! [String: Any]
            let kld = plain["kld_mean"] as! Double, maxError = plain["max_abs_logit_error"] as! Double
            XCTAssertGreaterThan(kld, 0, "\(type) is lossy: the comparison is not vacuous")
            for (level, models) in runs.dropFirst() {
                let final = models[i]["final"] as! [String: Any]
                let what = "\(type) at \(level) vs scalar"
                // Plus a floor for Q8_0, whose own error (KLD ~5e-5, max |dlogit| ~0.09) is small enough that
                // the levels' f32 rounding moves it by 11 % and 0.034; a wrong kernel moves it 100-fold.
                XCTAssertEqual(final["kld_mean"] as! Double, kld, accuracy: 0.1 * kld + 2e-5, what)
                XCTAssertEqual(final["max_abs_logit_error"] as! Double, maxError, accuracy: 0.25 * maxError + 0.05, what)
                XCTAssertEqual(final["top1_agreement"] as! Double, plain["top1_agreement"] as! Double, accuracy: 1.5 / 16, what)
            }
        }
    }

    func testBenchNamesTheForcedLevel() throws {
        let levels = try levels()
        XCTAssertEqual(levels.first, "scalar")
        for level in Set([levels[0], levels[levels.count - 1]]) {
            let result = try CLI.run(["bench", trained, "--prompt", "8", "--generate", "2", "--threads", "1", "--json"],
                                     environment: ["OURO_KERNELS": level])
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertEqual(try json(result.stdout)["kernel"] as? String, level)
        }
    }

    func testUnknownOrUnavailableLevelIsAOneLineError() throws {
        let available = try levels()
        // The other architecture's names, and this one's levels above the CPU's best.
        let bad = ["fastest", "AVX2"] + allLevels.filter { !available.contains($0) }
        XCTAssertGreaterThanOrEqual(bad.count, 5)
        for value in bad {
            let result = try CLI.run(["inspect", trained], environment: ["OURO_KERNELS": value])
            XCTAssertEqual(result.status, 2, value)
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
            XCTAssertTrue(result.stderr.hasPrefix("ouro: OURO_KERNELS=\(value): "), result.stderr)
            XCTAssertTrue(result.stdout.isEmpty, result.stdout)
        }
    }
}
