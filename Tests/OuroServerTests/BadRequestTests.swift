import Foundation
import XCTest

/// Every bad request gets a 4xx with `{"error": {"message", "type", "code"}}`, and the server keeps
/// serving; the API key; the bounded queue; hanging up mid-stream; SIGTERM.
final class BadRequestTests: XCTestCase {
    private func chat(_ extra: String = "", content: String = "hi") -> String {
        #"{"model": "trained", "messages": [{"role": "user", "content": "\#(content)"}], "max_tokens": 4, "temperature": 0\#(extra)}"#
    }

    private func assertError(_ reply: RawHTTP.Reply, _ status: Int, _ code: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(reply.status, status, reply.body, file: file, line: line)
        XCTAssertEqual(reply.errorCode, code, reply.body, file: file, line: line)
        let error = reply.json["error"] as? [String: Any]
        XCTAssertFalse((error?["message"] as? String ?? "").isEmpty, file: file, line: line)
        XCTAssertNotNil(error?["type"] as? String, file: file, line: line)
        XCTAssertEqual(reply.headers["content-type"], "application/json", file: file, line: line)
    }

    func testBadRequestsGetOpenAIErrorsAndTheServerKeepsServing() throws {
        let server = try ServerProcess(["--ctx", "64", "--max-body", "4096", "--parallel", "2"])
        let http = RawHTTP(port: server.port)
        let path = "/v1/chat/completions"

        assertError(try http.post(path, #"{"model": "trained", "messages": [ "#), 400, "invalid_json")
        assertError(try http.post(path, "[1, 2]"), 400, "invalid_json")
        assertError(try http.post(path, chat(#", "max_tokens": "ten""#).replacingOccurrences(of: #""max_tokens": 4, "#, with: "")), 400, "invalid_type")
        assertError(try http.post(path, #"{"model": "trained", "messages": [{"role": "user", "content": 5}]}"#), 400, "invalid_type")
        assertError(try http.post(path, #"{"model": "trained", "messages": "hi"}"#), 400, "invalid_type")
        assertError(try http.post(path, #"{"model": "trained", "temperature": 0}"#), 400, "missing_field")
        assertError(try http.post(path, #"{"messages": [{"role": "user", "content": "hi"}]}"#), 400, "missing_field")
        assertError(try http.post(path, #"{"model": "trained", "messages": [{"role": "wizard", "content": "hi"}]}"#), 400, "invalid_value")
        assertError(try http.post(path, chat(#", "n": 2"#)), 400, "unsupported_value")
        assertError(try http.post(path, chat(#", "top_p": 0"#)), 400, "invalid_value")
        assertError(try http.post(path, chat(#", "stream": "yes""#)), 400, "invalid_type")
        assertError(try http.post(path, chat(#", "presence_penalty": 1.5"#)), 400, "unsupported_parameter")
        assertError(try http.post(path, chat(#", "ouro": {"exit": "step:9"}"#)), 400, "invalid_value")
        assertError(try http.post(path, chat(#", "ouro": {"exit": "sometimes"}"#)), 400, "invalid_value")
        assertError(try http.post(path, chat().replacingOccurrences(of: #""trained""#, with: #""gpt-4o""#)), 404, "model_not_found")
        // Context 64: a 100-token prompt, and max_tokens past the end.
        let long = #"{"model": "trained", "prompt": [\#((0..<100).map { _ in "40" }.joined(separator: ","))], "max_tokens": 1}"#
        assertError(try http.post("/v1/completions", long), 400, "context_length_exceeded")
        assertError(try http.post("/v1/completions", #"{"model": "trained", "prompt": "def ", "max_tokens": 200}"#), 400, "context_length_exceeded")
        assertError(try http.post("/v1/completions", #"{"model": "trained", "prompt": [1, 99999], "max_tokens": 2}"#), 400, "invalid_value")
        assertError(try http.post("/v1/completions", #"{"model": "trained", "prompt": {"text": "x"}}"#), 400, "invalid_type")
        // 5000 bytes against --max-body 4096.
        assertError(try http.post(path, chat(content: String(repeating: "a", count: 5000))), 413, "body_too_large")
        assertError(try http.request("GET", "/v1/nothing"), 404, "not_found")

        // Still serving: a good request after all of that.
        let good = try http.post(path, chat())
        XCTAssertEqual(good.status, 200, good.body)
        let choices = good.json["choices"] as? [[String: Any]]
        XCTAssertEqual(choices?.count, 1)
        XCTAssertEqual((good.json["usage"] as? [String: Any])?["completion_tokens"] as? Int,
                       ((good.json["ouro"] as? [String: Any])?["completion_ids"] as? [Int])?.count)
        let health = try http.request("GET", "/health")
        XCTAssertEqual(health.status, 200)
        XCTAssertEqual(health.json["status"] as? String, "ok")
        XCTAssertTrue(server.process.isRunning)
    }

    func testAPIKeyIsRequiredExceptForHealth() throws {
        let server = try ServerProcess(["--api-key", "s3cret"])
        let http = RawHTTP(port: server.port)
        assertError(try http.request("GET", "/v1/models"), 401, "invalid_api_key")
        assertError(try http.request("GET", "/v1/models", headers: ["Authorization": "Bearer wrong"]), 401, "invalid_api_key")
        assertError(try http.post("/v1/chat/completions", chat()), 401, "invalid_api_key")
        let models = try http.request("GET", "/v1/models", headers: ["Authorization": "Bearer s3cret"])
        XCTAssertEqual(models.status, 200)
        XCTAssertEqual(((models.json["data"] as? [[String: Any]])?.first)?["id"] as? String, "trained")
        XCTAssertEqual(try http.post("/v1/chat/completions", chat(), headers: ["Authorization": "Bearer s3cret"]).status, 200)
        XCTAssertEqual(try http.request("GET", "/health").status, 200)
    }

    /// Opens a streamed completion of `maxTokens` tokens and reads until the first token chunk.
    private func openStream(_ http: RawHTTP, maxTokens: Int) throws -> Int32 {
        let fd = try http.connect()
        let body = #"{"model": "trained", "prompt": "def ", "max_tokens": \#(maxTokens), "temperature": 0, "stream": true}"#
        RawHTTP.send(fd, RawHTTP.requestBytes("POST", "/v1/completions", body: Data(body.utf8)))
        var seen = ""
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !seen.contains("\"text\"") {
            let n = recv(fd, &buffer, buffer.count, 0)
            guard n > 0 else { break }
            seen += String(decoding: buffer[0..<n], as: UTF8.self)
        }
        XCTAssertTrue(seen.hasPrefix("HTTP/1.1 200"), seen)
        return fd
    }

    private func waitForHealth(_ http: RawHTTP, timeout: TimeInterval, _ condition: ([String: Any]) -> Bool) throws -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if condition(try http.request("GET", "/health").json) { return true }
            usleep(50_000)
        }
        return false
    }

    func testFullQueueGets503AndHangingUpFreesTheSlot() throws {
        let server = try ServerProcess(["--parallel", "1", "--queue", "1"])
        let http = RawHTTP(port: server.port)
        // Time per token, to know how long a long answer would take if nobody hung up.
        let probe = try http.post("/v1/completions", #"{"model": "trained", "prompt": "def ", "max_tokens": 40, "temperature": 0}"#)
        let ouro = probe.json["ouro"] as? [String: Any]
        let perToken = (ouro?["decode_seconds"] as? Double ?? 0) / 39
        XCTAssertGreaterThan(perToken, 0)

        let running = try openStream(http, maxTokens: 1900)
        // The second waits in the queue (its socket gets no answer yet); the third is refused.
        let waitingFD = try http.connect()
        RawHTTP.send(waitingFD, RawHTTP.requestBytes("POST", "/v1/completions",
                                                     body: Data(#"{"model": "trained", "prompt": "x", "max_tokens": 1900, "stream": true}"#.utf8)))
        XCTAssertTrue(try waitForHealth(http, timeout: 30) { $0["waiting"] as? Int == 1 })
        let refused = try http.post("/v1/completions", #"{"model": "trained", "prompt": "x", "max_tokens": 2}"#)
        assertError(refused, 503, "server_busy")
        XCTAssertEqual(refused.headers["retry-after"], "1")

        // Both hang up: their generations stop long before 1900 tokens would have been generated.
        let hungUp = Date()
        close(waitingFD)
        close(running)
        let whole = 1900 * perToken
        XCTAssertTrue(try waitForHealth(http, timeout: max(whole / 2, 1)) { $0["running"] as? Int == 0 && $0["waiting"] as? Int == 0 },
                      "slots not freed \(Date().timeIntervalSince(hungUp)) s after hanging up; the answer alone takes ~\(whole) s")
        XCTAssertEqual(try http.post("/v1/completions", #"{"model": "trained", "prompt": "x", "max_tokens": 2}"#).status, 200)
    }

    func testSIGTERMFinishesTheRunningAnswerAndExitsZero() throws {
        let server = try ServerProcess(["--parallel", "2"])
        let http = RawHTTP(port: server.port)
        let fd = try openStream(http, maxTokens: 60)
        kill(server.process.processIdentifier, SIGTERM)
        // The running answer still ends properly, with [DONE].
        let rest = readUntilClosed(fd)
        XCTAssertTrue(rest.contains("data: [DONE]"), rest)
        server.process.waitUntilExit()
        XCTAssertEqual(server.process.terminationStatus, 0, server.stderr)
        XCTAssertThrowsError(try http.request("GET", "/health"))
    }

    func testAnswersStillRunningAfterTheShutdownGraceAreCancelled() throws {
        let server = try ServerProcess(["--shutdown-grace", "0.3"])
        let http = RawHTTP(port: server.port)
        let fd = try openStream(http, maxTokens: 1900)
        kill(server.process.processIdentifier, SIGTERM)
        let rest = readUntilClosed(fd)
        XCTAssertTrue(rest.contains(#""code":"cancelled""#), String(rest.suffix(500)))
        XCTAssertTrue(rest.contains("data: [DONE]"))
        XCTAssertFalse(rest.contains(#""finish_reason":"length""#))
        server.process.waitUntilExit()
        XCTAssertEqual(server.process.terminationStatus, 0, server.stderr)
    }

    func testHelpTeaches() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ServerProcess.binary)
        process.arguments = ["serve", "--help"]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        for word in ["/v1/chat/completions", "/v1/completions", "--parallel", "--api-key", "--ctx", "SIGTERM", "curl", "Retry-After"] {
            XCTAssertTrue(text.contains(word), "serve --help lacks \(word)")
        }
    }

    /// Everything the server still sends on `fd` until it closes the connection; closes `fd`.
    private func readUntilClosed(_ fd: Int32) -> String {
        var text = ""
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &buffer, buffer.count, 0)
            if n <= 0 { break }
            text += String(decoding: buffer[0..<n], as: UTF8.self)
        }
        close(fd)
        return text
    }
}
