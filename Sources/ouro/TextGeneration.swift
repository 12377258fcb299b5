import Foundation
import OuroModel
import OuroTokenizer

/// One answer generated after a prompt, token by token, with the text streamed as it completes.
struct GeneratedAnswer {
    enum StopReason: String, Encodable {
        /// A stop token (end of turn / end of text) was drawn.
        case stop
        /// `--max-new` tokens were generated.
        case maxNew = "max_new"
        /// The model's maximum positions were reached.
        case context
        /// Ctrl-C during the answer (`ouro chat`).
        case interrupted
    }

    /// Every drawn token, a final stop token included.
    var ids: [Int] = []
    /// The text of the drawn tokens, stop token excluded.
    var text = ""
    var stopReason = StopReason.maxNew
    /// Tokens run for the prompt (after any reused from the session) and the time they took.
    var promptTokens = 0
    var prefillSeconds = 0.0
    var decodeSeconds = 0.0

    /// Tokens per second after the first (each needs one forward call).
    var decodeTokensPerSecond: Double { ids.count > 1 && decodeSeconds > 0 ? Double(ids.count - 1) / decodeSeconds : 0 }
}

/// Runs `prompt` through `session` (reusing the longest prefix it already holds), then draws up to
/// `maxNew` tokens, handing each completed piece of text to `write` as soon as it exists.
func generateAnswer(session: OuroSession, prompt: [Int], maxNew: Int, sampler: inout Sampler, tokenizer: Tokenizer,
                    write: (String) -> Void, interrupted: () -> Bool = { false }) throws -> GeneratedAnswer {
    var answer = GeneratedAnswer()
    let reused = zip(session.tokens, prompt).prefix { $0 == $1 }.count
    // At least the last prompt token must run: its logits predict the first answer token.
    try session.truncate(to: min(reused, prompt.count - 1))
    let newTokens = Array(prompt[session.tokens.count...])
    answer.promptTokens = newTokens.count
    guard maxNew > 0 else { return answer }
    let started = DispatchTime.now().uptimeNanoseconds
    var logits = try session.append(newTokens)
    let prefillEnded = DispatchTime.now().uptimeNanoseconds
    answer.prefillSeconds = Double(prefillEnded - started) / 1e9
    var decoder = StreamingDecoder(tokenizer: tokenizer)
    while true {
        let next = sampler.next(logits, context: session.tokens)
        answer.ids.append(next)
        if tokenizer.stopTokenIDs.contains(next) {
            answer.stopReason = .stop
            break
        }
        let piece = decoder.push(next)
        answer.text += piece
        if !piece.isEmpty { write(piece) }
        if answer.ids.count == maxNew { answer.stopReason = .maxNew; break }
        if session.remainingPositions == 0 { answer.stopReason = .context; break }
        if interrupted() { answer.stopReason = .interrupted; break }
        logits = try session.append([next])
    }
    let tail = decoder.finish()
    answer.text += tail
    if !tail.isEmpty { write(tail) }
    answer.decodeSeconds = Double(DispatchTime.now().uptimeNanoseconds - prefillEnded) / 1e9
    return answer
}

/// Writes to stdout at once (no buffering), so streamed text appears as it is generated.
func writeToStandardOutput(_ text: String) {
    FileHandle.standardOutput.write(Data(text.utf8))
}

/// Ctrl-C in `ouro chat`: during an answer it stops the answer (the conversation goes on); at the
/// prompt it ends the program as usual.
enum InterruptAnswer {
    nonisolated(unsafe) private static var answering: sig_atomic_t = 0
    nonisolated(unsafe) private static var requested: sig_atomic_t = 0

    static func install() {
        signal(SIGINT) { _ in
            if InterruptAnswer.answering != 0 {
                InterruptAnswer.requested = 1
            } else {
                signal(SIGINT, SIG_DFL)
                raise(SIGINT)
            }
        }
    }

    /// Runs `body` with Ctrl-C meaning "stop this answer"; `body` polls the closure it is given.
    static func during<T>(_ body: (() -> Bool) throws -> T) rethrows -> T {
        requested = 0
        answering = 1
        defer { answering = 0 }
        return try body { requested != 0 }
    }
}
