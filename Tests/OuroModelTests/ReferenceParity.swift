import Foundation
import SafeTensors
import XCTest
@testable import OuroModel

/// Checks a runner against the golden tensors of a fixture's reference.safetensors, prompt by prompt.
struct ReferenceParity {
    let reference: SafeTensorsFile
    let prompts: [String]

    init(fixture: String) throws {
        reference = try SafeTensorsFile(path: Fixtures.folder(fixture) + "/reference.safetensors")
        prompts = reference.tensors.map(\.name).filter { $0.hasSuffix(".input_ids") }
            .map { String($0.dropLast(".input_ids".count)) }.sorted()
    }

    func tokens(_ prompt: String) throws -> [Int] {
        try reference.int64s(prompt + ".input_ids").map { Int($0) }
    }

    /// Max |a − b|, failing on length mismatch.
    static func maxAbsDiff(_ a: [Float], _ b: [Float], _ what: String, file: StaticString = #filePath, line: UInt = #line) -> Float {
        XCTAssertEqual(a.count, b.count, "\(what): length", file: file, line: line)
        guard a.count == b.count else { return .infinity }
        var worst: Float = 0
        for i in a.indices {
            let d = abs(a[i] - b[i])
            if !(d <= worst) { worst = d.isNaN ? .infinity : d }
        }
        return worst
    }

    func assertClose(_ ours: [Float], _ name: String, tolerance: Float, file: StaticString = #filePath, line: UInt = #line) throws {
        let golden = try reference.floats(name)
        let diff = Self.maxAbsDiff(ours, golden, name, file: file, line: line)
        XCTAssertLessThanOrEqual(diff, tolerance, name, file: file, line: line)
    }

    /// Every per-step tensor and every exit mode of one uncached forward pass.
    func checkForward(_ runner: OuroRunner, prompt: String, logitTolerance: Float = 1e-3,
                      file: StaticString = #filePath, line: UInt = #line) throws {
        let out = try runner.forward(tokens: try tokens(prompt))
        let S = out.steps, T = out.tokens
        XCTAssertEqual(S, runner.config.loopCount)
        try assertClose(out.stepLogits.flatMap { $0 }, prompt + ".step_logits", tolerance: logitTolerance, file: file, line: line)
        try assertClose(out.stepHidden.flatMap { $0 }, prompt + ".step_hidden", tolerance: logitTolerance, file: file, line: line)
        try assertClose(out.gateLogits.flatMap { $0 }, prompt + ".gate_logits", tolerance: logitTolerance, file: file, line: line)
        let pdf = out.exitPDF()
        XCTAssertEqual(pdf.count, T)
        try assertClose(pdf.flatMap { $0 }, prompt + ".exit_pdf", tolerance: 1e-4, file: file, line: line)
        try assertClose(out.logits(runner.defaultExitMode), prompt + ".final_logits", tolerance: logitTolerance, file: file, line: line)
        try assertClose(out.logits(.weighted), prompt + ".weighted_logits", tolerance: logitTolerance, file: file, line: line)
        try assertClose(out.logits(.step(1)), prompt + ".exit_at_step_1.logits", tolerance: logitTolerance, file: file, line: line)
        for q in ["0.5", "0.9"] {
            let steps = out.exitSteps(threshold: Float(q)!)
            let golden = try reference.int64s("\(prompt).threshold_\(q).exit_steps").map { Int($0) }
            XCTAssertEqual(steps, golden, "\(prompt) threshold \(q) exit steps", file: file, line: line)
            try assertClose(out.logits(.threshold(Float(q)!)), "\(prompt).threshold_\(q).logits",
                            tolerance: logitTolerance, file: file, line: line)
        }
    }

    /// Greedy tokens from our cached and uncached paths against both golden lists.
    func checkGeneration(_ runner: OuroRunner, prompt: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let goldenCached = try reference.int64s(prompt + ".greedy_cached").map { Int($0) }
        let goldenUncached = try reference.int64s(prompt + ".greedy_uncached").map { Int($0) }
        let input = try tokens(prompt)
        let cached = try runner.generate(prompt: input, maxNewTokens: goldenCached.count, cached: true)
        let uncached = try runner.generate(prompt: input, maxNewTokens: goldenUncached.count, cached: false)
        XCTAssertEqual(cached, goldenCached, "\(prompt) cached", file: file, line: line)
        XCTAssertEqual(uncached, goldenUncached, "\(prompt) uncached", file: file, line: line)
        XCTAssertEqual(cached, uncached, "\(prompt) cached vs uncached", file: file, line: line)
    }
}
