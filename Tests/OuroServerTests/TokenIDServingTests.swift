import Foundation
import OuroTestSupport
import XCTest

/// A model without a tokenizer: completions take token ids and answer ids, which must equal what
/// `ouro generate --tokens` (the runner's own cached greedy loop, not the batched path) gives.
final class TokenIDServingTests: XCTestCase {
    func testTokenIDPromptsGiveTheGreedyIDsOfGenerate() throws {
        let model = Fixtures.folder("ouro-tiny-b")
        let prompts = [[3, 141, 59, 26], [9, 32, 335, 8, 77, 21], [40]]
        var expected: [[Int]] = []
        for prompt in prompts {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: ServerProcess.binary)
            process.arguments = ["generate", model, "--tokens", prompt.map(String.init).joined(separator: ","), "--max-new", "6", "--exit", "last"]
            let out = Pipe()
            process.standardOutput = out
            try process.run()
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            expected.append(text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",").compactMap { Int($0) })
            XCTAssertEqual(expected.last?.count, 6)
        }
        let server = try ServerProcess(["--parallel", "3", "--exit", "last"], model: model)
        let http = RawHTTP(port: server.port)
        // Three at once, so they share forward passes.
        final class Replies: @unchecked Sendable {
            let lock = NSLock()
            var values = [RawHTTP.Reply?](repeating: nil, count: 3)
        }
        let replies = Replies()
        DispatchQueue.concurrentPerform(iterations: 3) { i in
            let body = #"{"model": "trained", "prompt": \#(prompts[i]), "max_tokens": 6, "temperature": 0}"#
            let reply = try? http.post("/v1/completions", body)
            replies.lock.lock(); replies.values[i] = reply; replies.lock.unlock()
        }
        for i in 0..<3 {
            let reply = try XCTUnwrap(replies.values[i])
            XCTAssertEqual(reply.status, 200, reply.body)
            do {  // non-streamed; the id-only SSE chunks are not checked by a test yet
                XCTAssertEqual((reply.json["ouro"] as? [String: Any])?["completion_ids"] as? [Int], expected[i])
                XCTAssertEqual((reply.json["usage"] as? [String: Any])?["prompt_tokens"] as? Int, prompts[i].count)
            }
        }
        let chat = try http.post("/v1/chat/completions", #"{"model": "trained", "messages": [{"role": "user", "content": "hi"}]}"#)
        XCTAssertEqual(chat.status, 400)
        XCTAssertEqual(chat.errorCode, "no_chat_template")
        let text = try http.post("/v1/completions", #"{"model": "trained", "prompt": "hi"}"#)
        XCTAssertEqual(text.status, 400)
        XCTAssertEqual(text.errorCode, "no_tokenizer")
    }
}
