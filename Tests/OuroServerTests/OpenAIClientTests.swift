import Foundation
import OuroTestSupport
import XCTest

/// The official `openai` Python package against `ouro serve`: chat and completions, streamed and not,
/// concurrent. The expected greedy answers are computed by `ouro generate` on the same GGUF.
final class OpenAIClientTests: XCTestCase {
    static let script: String = {
        var url = URL(fileURLWithPath: #filePath)
        url.deleteLastPathComponent()
        return url.appendingPathComponent("openai_checks.py").path
    }()

    private func run(_ executable: String, _ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    private func generate(_ arguments: [String]) throws -> [String: Any] {
        let result = try run(ServerProcess.binary, ["generate", ServerProcess.model] + arguments + ["--json"])
        XCTAssertEqual(result.status, 0, result.err)
        return try JSONSerialization.jsonObject(with: Data(result.out.utf8)) as! [String: Any]
    }

    func testTheOpenAIClientGetsTheGreedyAnswers() throws {
        let python = ProcessInfo.processInfo.environment["OURO_PYTHON"] ?? "/usr/bin/env"
        let prefix = python == "/usr/bin/env" ? ["python3"] : []
        guard try run(python, prefix + ["-c", "import openai"]).status == 0 else {
            throw XCTSkip("the openai package is not importable by \(python); ./Scripts/test.sh installs it")
        }
        let maxTokens = 16
        let prompt = "def "
        let completion = try generate(["--prompt", prompt, "--max-new", String(maxTokens)])
        let folder = try Fixtures.temporaryFolder()
        let user = "import os"
        try #"[{"role": "user", "content": "\#(user)"}]"#.write(toFile: folder + "/chat.json", atomically: true, encoding: .utf8)
        let chat = try generate(["--chat", folder + "/chat.json", "--max-new", String(maxTokens)])
        let expected: [String: Any] = [
            "prompt": prompt, "max_tokens": maxTokens,
            "completion_text": completion["text"]!, "completion_tokens": (completion["generated"] as! [Int]).count,
            "prompt_tokens": (completion["prompt"] as! [Int]).count,
            "chat_user": user, "chat_text": chat["text"]!, "chat_prompt_tokens": (chat["prompt"] as! [Int]).count,
        ]
        let server = try ServerProcess(["--parallel", "3"])
        let json = String(decoding: try JSONSerialization.data(withJSONObject: expected), as: UTF8.self)
        let result = try run(python, prefix + [Self.script, server.baseURL, "trained", json])
        XCTAssertEqual(result.status, 0, result.out + result.err)
        XCTAssertTrue(result.out.contains("openai checks passed"), result.out + result.err)
    }
}
