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
    /// The process's CPU seconds (all threads) over the same span: with `--threads 1` the decode's own
    /// compute, which time-slicing on a loaded machine does not stretch as it stretches wall time.
    var decodeCPUSeconds = 0.0
    /// One-token forward calls of this answer and the loop steps they ran (early exit: fewer than the
    /// loop count each).
    var decodeCalls = 0
    var decodeLoopSteps = 0
    /// Speculative decoding: tokens drafted and drafts kept.
    var draftedTokens = 0
    var acceptedDrafts = 0

    /// nil with speculation (its drafts and verification passes are not one-token calls).
    var meanLoopSteps: Double? { decodeCalls > 0 && draftedTokens == 0 ? Double(decodeLoopSteps) / Double(decodeCalls) : nil }
    var acceptanceRate: Double? { draftedTokens > 0 ? Double(acceptedDrafts) / Double(draftedTokens) : nil }

    /// Tokens per second after the first (each needs one forward call).
    var decodeTokensPerSecond: Double { ids.count > 1 && decodeSeconds > 0 ? Double(ids.count - 1) / decodeSeconds : 0 }
}

/// Self-speculative decoding settings (`--speculate K --draft-steps D`).
struct Speculation {
    let draftTokens: Int
    let draftSteps: Int
    /// Drafting stops at a draft less probable than this under the draft distribution.
    var minDraftProbability: Double = 0
}

/// Runs `prompt` through `session` (reusing the longest prefix it already holds), then draws up to
/// `maxNew` tokens, handing each completed piece of text to `write` as soon as it exists. With
/// `speculation`, tokens after the first come from `OuroSession.appendSpeculating` (the same tokens
/// as plain greedy decoding; sampled: the same distribution).
/// `tokenizer` nil: ids only (no stop tokens, no text).
func generateAnswer(session: OuroSession, prompt: [Int], maxNew: Int, sampler: inout Sampler, tokenizer: Tokenizer?,
                    speculation: Speculation? = nil,
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
    let prefillEndedCPU = processCPUSeconds()
    answer.prefillSeconds = Double(prefillEnded - started) / 1e9
    var decoder = tokenizer.map { StreamingDecoder(tokenizer: $0) }
    let (callsBefore, stepsBefore) = (session.decodedTokens, session.decodeLoopSteps)
    let (draftedBefore, acceptedBefore) = (session.draftedTokens, session.acceptedDrafts)
    let maxPositions = session.runner.config.maxPositions
    /// Takes one drawn token; true when the answer ends with it.
    func emit(_ token: Int) -> Bool {
        answer.ids.append(token)
        if tokenizer?.stopTokenIDs.contains(token) == true {
            answer.stopReason = .stop
            return true
        }
        let piece = decoder?.push(token) ?? ""
        answer.text += piece
        if !piece.isEmpty { write(piece) }
        if answer.ids.count == maxNew { answer.stopReason = .maxNew; return true }
        // The positions the drawn tokens before this one take (this one is not run yet).
        if prompt.count + answer.ids.count - 1 >= maxPositions { answer.stopReason = .context; return true }
        if interrupted() { answer.stopReason = .interrupted; return true }
        return false
    }
    var drawn: Int?
    decoding: while true {
        let next = drawn ?? sampler.next(logits, context: session.tokens)
        drawn = nil
        if emit(next) { break }
        guard let speculation else {
            logits = try session.append([next])
            continue
        }
        let result = try session.appendSpeculating(next, draftTokens: min(speculation.draftTokens, maxNew - answer.ids.count - 1),
                                                   draftSteps: speculation.draftSteps,
                                                   minDraftProbability: speculation.minDraftProbability, sampler: &sampler)
        for token in result.accepted where emit(token) { break decoding }
        logits = result.logits
        drawn = result.next
    }
    if speculation != nil {
        // As plain decoding leaves it: every drawn token but the last has run.
        try session.truncate(to: prompt.count + answer.ids.count - 1)
    }
    answer.decodeCalls = session.decodedTokens - callsBefore
    answer.decodeLoopSteps = session.decodeLoopSteps - stepsBefore
    answer.draftedTokens = session.draftedTokens - draftedBefore
    answer.acceptedDrafts = session.acceptedDrafts - acceptedBefore
    let tail = decoder?.finish() ?? ""
    answer.text += tail
    if !tail.isEmpty { write(tail) }
    answer.decodeSeconds = Double(DispatchTime.now().uptimeNanoseconds - prefillEnded) / 1e9
    answer.decodeCPUSeconds = processCPUSeconds() - prefillEndedCPU
    return answer
}

/// CPU seconds this process has used so far (all threads, user + system).
private func processCPUSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
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
