import Foundation
import OuroTestSupport
import XCTest

/// `ouro chat` driven like a person at a terminal: through a pseudo-terminal (Python's pty module, from
/// the standard library), typing lines, waiting for each answer, then Ctrl-D.
final class ChatCLITests: XCTestCase {
    static let model = Fixtures.folder("ouro-trained-s")

    /// Types `lines` into `ouro chat` on a pty, each after the previous answer's stats line (or, for
    /// `/reset`, its confirmation), then Ctrl-D; returns the exit status and everything the terminal showed.
    /// A line followed by "<ctrl-c>" is answered for a few seconds, then interrupted with Ctrl-C.
    private static let driver = #"""
    import json, os, pty, select, sys, time
    binary, arguments, lines = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(binary, [binary] + arguments)
    out = b""
    def wait_for(marker, count, timeout=600):
        global out
        end = time.time() + timeout
        while out.count(marker) < count:
            ready, _, _ = select.select([fd], [], [], max(0.0, end - time.time()))
            if not ready:
                sys.exit("timed out waiting for %r; the terminal showed:\n%s" % (marker, out.decode(errors="replace")))
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                sys.exit("ouro exited early; the terminal showed:\n" + out.decode(errors="replace"))
            out += chunk
    wait_for(b"Ctrl-D leaves.", 1)
    answers = resets = 0
    for index, line in enumerate(lines):
        if line == "<ctrl-c>":
            time.sleep(3)
            os.write(fd, b"\x03")
            wait_for(b" tokens/s; prompt: ", answers)
            continue
        os.write(fd, line.encode() + b"\n")
        if index + 1 < len(lines) and lines[index + 1] == "<ctrl-c>":
            answers += 1
        elif line == "/reset":
            resets += 1
            wait_for(b"(new conversation)", resets)
        else:
            answers += 1
            wait_for(b" tokens/s; prompt: ", answers)
    os.write(fd, b"\x04")
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    print(json.dumps({"status": os.waitstatus_to_exitcode(status), "terminal": out.decode(errors="replace")}))
    """#

    private func python() throws -> String {
        for candidate in ["/usr/bin/python3", "/usr/local/bin/python3"] where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        throw XCTSkip("python3 is needed to drive a pseudo-terminal")
    }

    private func drive(_ arguments: [String], typing lines: [String]) throws -> (status: Int, terminal: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try python())
        let encode = { (v: [String]) in String(decoding: try JSONSerialization.data(withJSONObject: v), as: UTF8.self) }
        process.arguments = ["-c", Self.driver, CLI.binary, try encode(arguments), try encode(lines)]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errors = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, errors)
        let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        return (json["status"] as! Int, json["terminal"] as! String)
    }

    /// (answer tokens, new prompt tokens, prompt tokens reused from the cache) of each stats line.
    private func stats(_ terminal: String) -> [(tokens: Int, new: Int, reused: Int)] {
        let pattern = try! NSRegularExpression(pattern: #"\[(\d+) tokens, [0-9.]+ tokens/s; prompt: (\d+) new tokens, (\d+) reused"#)
        return pattern.matches(in: terminal, range: NSRange(terminal.startIndex..., in: terminal)).map { m in
            let n = { (i: Int) in Int((terminal as NSString).substring(with: m.range(at: i)))! }
            return (n(1), n(2), n(3))
        }
    }

    func testTwoTurnsKeepTheFirstInTheCacheAndResetStartsOver() throws {
        let (status, terminal) = try drive(["chat", Self.model, "--max-new", "4"], typing: ["import os", "import sys", "/reset", "import re"])
        XCTAssertEqual(status, 0, terminal)
        XCTAssertTrue(terminal.contains("> "), terminal)
        let turns = stats(terminal)
        XCTAssertEqual(turns.count, 3, terminal)
        guard turns.count == 3 else { return }
        // Turn 1 renders <|im_start|>user\nimport os<|im_end|>\n<|im_start|>assistant\n: 1 + 14 + 1 + 1 + 1 + 10 tokens.
        XCTAssertEqual(turns[0].new, 28)
        XCTAssertEqual(turns[0].reused, 0)
        // Turn 2 runs only what follows what the cache holds: the first prompt and every answer token
        // but the last drawn (which was never run).
        XCTAssertEqual(turns[1].reused, turns[0].new + turns[0].tokens - 1, terminal)
        XCTAssertGreaterThan(turns[1].new, 0)
        XCTAssertEqual(turns[2].reused, 0, "after /reset nothing is reused")
        XCTAssertEqual(turns[2].new, 28)
    }

    func testCtrlCStopsTheAnswerAndTheConversationGoesOn() throws {
        let (status, terminal) = try drive(["chat", Self.model, "--max-new", "100000"], typing: ["import os", "<ctrl-c>", "/reset"])
        XCTAssertEqual(status, 0, terminal)
        let turns = stats(terminal)
        XCTAssertEqual(turns.count, 1, terminal)
        XCTAssertTrue(terminal.contains("; interrupted]"), terminal)
        XCTAssertTrue(terminal.contains("(new conversation)"), terminal)
        XCTAssertLessThan(turns.first?.tokens ?? 100000, 100000)
    }

    func testPipedInputAnswersEachLineWithoutPrompts() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        process.arguments = ["chat", Self.model, "--max-new", "2", "--system", "Python only."]
        let input = Pipe(), out = Pipe(), err = Pipe()
        process.standardInput = input
        process.standardOutput = out
        process.standardError = err
        try process.run()
        input.fileHandleForWriting.write(Data("def f():\n\n/unknown\nreturn 1\n".utf8))
        try input.fileHandleForWriting.close()
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, stderr)
        XCTAssertFalse(stdout.contains("> "), stdout)
        XCTAssertEqual(stats(stderr).count, 2, stderr)
        XCTAssertTrue(stderr.contains("unknown command /unknown"), stderr)
        // The --system message is part of the first prompt: 1 + 19 ("system\nPython only.") + 1 + 1 tokens, then the user turn.
        XCTAssertEqual(stats(stderr).first?.new, 22 + 27, stderr)
    }
}

/// `ouro chat` with the adaptive-depth options `generate` has.
final class ChatDepthCLITests: XCTestCase {
    private func chat(_ extra: [String], input: String) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.binary)
        process.arguments = ["chat", ChatCLITests.model, "--max-new", "24"] + extra
        let stdin = Pipe(), out = Pipe(), err = Pipe()
        process.standardInput = stdin
        process.standardOutput = out
        process.standardError = err
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, stdout, stderr)
    }

    func testSpeculativeChatAnswersExactlyAsPlainGreedyChat() throws {
        let turns = "def f():\nreturn 1\n"
        let plain = try chat([], input: turns)
        XCTAssertEqual(plain.status, 0, plain.stderr)
        let speculative = try chat(["--speculate", "3", "--draft-steps", "1"], input: turns)
        XCTAssertEqual(speculative.status, 0, speculative.stderr)
        XCTAssertEqual(speculative.stdout, plain.stdout)
        XCTAssertEqual(speculative.stderr.components(separatedBy: "drafts accepted").count, 3, speculative.stderr)
        let early = try chat(["--exit", "threshold:0.5"], input: turns)
        XCTAssertEqual(early.status, 0, early.stderr)
        XCTAssertEqual(early.stderr.components(separatedBy: "loop steps per token").count, 3, early.stderr)
    }

    func testDepthOptionMisuseIsAUsageError() throws {
        let cases: [([String], String)] = [
            (["--draft-steps", "2"], "'--draft-steps' applies to '--speculate K' only"),
            (["--speculate", "2", "--exit", "threshold:0.5"], "add '--full-depth'"),
            (["--full-depth"], "'--full-depth' applies to '--exit threshold:Q' only"),
            (["--speculate", "2", "--kv-share", "last"], "'--speculate' needs '--kv-share full'"),
        ]
        for (extra, mention) in cases {
            let result = try chat(extra, input: "")
            XCTAssertEqual(result.status, 2, "\(extra): \(result.stderr)")
            XCTAssertTrue(result.stderr.split(separator: "\n").first?.contains(mention) ?? false, "\(extra): \(result.stderr)")
        }
    }
}
