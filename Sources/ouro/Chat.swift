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
                """)

        @Argument(help: "A .gguf file or a checkpoint folder (with its tokenizer).")
        var model: String

        @Option(help: "How many tokens one answer may have at most.")
        var maxNew: Int = 512

        @Option(help: "Exit mode: last, step:K, threshold:Q or weighted.")
        var exit: ExitArgument?

        @Option(help: "Threads (default: number of online CPUs).")
        var threads: Int?

        @OptionGroup var sampling: SamplingArguments

        @OptionGroup var conversation: ConversationArguments

        @OptionGroup var kv: KVCacheArguments

        @OptionGroup var context: ContextLimitArgument

        func validate() throws {
            guard maxNew >= 1 else { throw ValidationError("'--max-new' must be 1 or more") }
            guard (threads ?? 1) >= 1 else { throw ValidationError("'--threads' must be 1 or more") }
        }

        func run() throws {
            let (tokenizer, template, session) = try reportingBadInput { () -> (Tokenizer, ChatTemplate, OuroSession) in
                let tokenizer = try loadTokenizer(model)
                let template = try conversation.template(tokenizer, model: model)
                let runner = OuroRunner(weights: try loadWeights(model), threads: threads)
                return (tokenizer, template, try OuroSession(runner: runner, exit: exit?.mode,
                                                                   kv: kv.options(contextLimit: context.contextLimit)))
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
                                           tokenizer: tokenizer, write: writeToStandardOutput, interrupted: interrupted)
                    }
                    writeToStandardOutput("\n")
                    messages.append(ChatMessage(role: "assistant", content: answer.text))
                    let reused = ids.count - answer.promptTokens
                    printError(String(format: "[%d tokens, %.1f tokens/s; prompt: %d new tokens, %d reused from the cache%@]",
                                      answer.ids.count, answer.decodeTokensPerSecond, answer.promptTokens, reused,
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
