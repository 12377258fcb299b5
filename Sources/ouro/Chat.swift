import ArgumentParser
import Foundation
import OuroModel
import OuroTokenizer

extension OuroCommand {
    struct Chat: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Talk with a model: a multi-turn conversation on the terminal.",
            discussion: """
                Type a message and press Enter; the answer streams as it is generated and ends at the \
                model's end of turn (or --max-new tokens), followed on stderr by its token count and speed. \
                Earlier turns stay in the KV cache: each turn runs only its own new tokens.
                  /reset   start a new conversation (the --system message stays)
                  Ctrl-C   stop the answer being generated (at the prompt: quit)
                  Ctrl-D   leave

                The conversation is rendered with the model's chat template (--chat-format chatml for \
                models without one); --thinking sets the template's enable_thinking.

                Adaptive depth (as in `ouro generate`; Docs/ADAPTIVE_DEPTH.md):
                  --exit threshold:Q             each answer token stops looping at its exit step \
                (faster, an approximation of the full model); --full-depth computes every step
                  --speculate K --draft-steps D  draft K tokens with the first D loop steps and verify \
                them in one pass: greedy answers are exactly plain greedy's, sampled ones keep their \
                distribution. The stderr line after each answer gives the acceptance rate or the mean \
                loop steps.
                """)

        @Argument(help: "A .gguf file or a checkpoint folder (with its tokenizer).")
        var model: String

        @Option(help: "How many tokens one answer may have at most.")
        var maxNew: Int = 512

        @OptionGroup var depth: DepthArguments

        @Option(help: "Threads (default: number of online CPUs).")
        var threads: Int?

        @OptionGroup var sampling: SamplingArguments

        @OptionGroup var conversation: ConversationArguments

        @OptionGroup var kv: KVCacheArguments

        @OptionGroup var context: ContextLimitArgument

        func validate() throws {
            guard maxNew >= 1 else { throw ValidationError("'--max-new' must be 1 or more") }
            guard (threads ?? 1) >= 1 else { throw ValidationError("'--threads' must be 1 or more") }
            try depth.check(kvShare: kv.kvShare)
        }

        func run() throws {
            let (tokenizer, template, session, speculation) = try reportingBadInput {
                () -> (Tokenizer, ChatTemplate, OuroSession, Speculation?) in
                let tokenizer = try loadTokenizer(model)
                let template = try conversation.template(tokenizer, model: model)
                let runner = OuroRunner(weights: try loadWeights(model), threads: threads)
                let session = try OuroSession(runner: runner, exit: depth.exit?.mode, kv: kv.options(contextLimit: context.contextLimit))
                session.earlyExit = depth.earlyExit
                return (tokenizer, template, session, try depth.speculation(runner))
            }
            let opening = try reportingBadInput { try conversation.withSystem([]) }
            var messages = opening
            var sampler = Sampler(sampling.options)
            let interactive = isatty(0) != 0
            InterruptAnswer.install()
            printError("Chatting with \(model). /reset starts over, Ctrl-D leaves.")
            while true {
                if interactive { writeToStandardOutput("> ") }
                guard let line = readLine(strippingNewline: true) else {
                    if interactive { writeToStandardOutput("\n") }
                    return
                }
                let text = line.trimmingCharacters(in: .whitespaces)
                if text.isEmpty { continue }
                if text == "/reset" {
                    messages = opening
                    session.reset()
                    printError("(new conversation)")
                    continue
                }
                if text.hasPrefix("/") && !text.contains(" ") {
                    printError("unknown command \(text); /reset starts over, Ctrl-D leaves")
                    continue
                }
                messages.append(ChatMessage(role: "user", content: line))
                do {
                    let ids = try conversation.prompt(messages, template: template, tokenizer: tokenizer).ids
                    let limit = session.contextLimit
                    guard ids.count < limit else {
                        throw CLIError("the conversation has \(ids.count) tokens, the context limit is \(limit); /reset starts over")
                    }
                    let answer = try InterruptAnswer.during { interrupted in
                        try generateAnswer(session: session, prompt: ids, maxNew: min(maxNew, limit - ids.count), sampler: &sampler,
                                           tokenizer: tokenizer, speculation: speculation, write: writeToStandardOutput,
                                           interrupted: interrupted)
                    }
                    writeToStandardOutput("\n")
                    messages.append(ChatMessage(role: "assistant", content: answer.text))
                    let reused = ids.count - answer.promptTokens
                    let depthNote = answer.acceptanceRate.map { String(format: "; drafts accepted %.0f%%", $0 * 100) }
                        ?? (depth.earlyExit ? answer.meanLoopSteps.map { String(format: "; %.2f loop steps per token", $0) } : nil) ?? ""
                    printError(String(format: "[%d tokens, %.1f tokens/s; prompt: %d new tokens, %d reused from the cache%@%@]",
                                      answer.ids.count, answer.decodeTokensPerSecond, answer.promptTokens, reused, depthNote,
                                      answer.stopReason == .stop ? "" : answer.stopReason == .interrupted ? "; interrupted" : "; stopped at --max-new"))
                } catch {
                    // The turn is dropped; the conversation goes on.
                    messages.removeLast()
                    printError("ouro: \(error)")
                }
            }
        }
    }
}
