import ArgumentParser
import Foundation
import OuroModel
import OuroTokenizer

/// `--exit` values: `last`, `step:K` (1-based), `threshold:Q`, `weighted`.
struct ExitArgument: ExpressibleByArgument {
    let mode: ExitMode

    init?(argument: String) {
        let parts = argument.split(separator: ":", maxSplits: 1).map(String.init)
        switch (parts.first, parts.count) {
        case ("last", 1): mode = .lastStep
        case ("weighted", 1): mode = .weighted
        case ("step", 2):
            guard let k = Int(parts[1]), k >= 1 else { return nil }
            mode = .step(k - 1)
        case ("threshold", 2):
            guard let q = Float(parts[1]), q > 0, q <= 1 else { return nil }
            mode = .threshold(q)
        default: return nil
        }
    }
}

extension OuroCommand {
    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Generate text from a prompt or a conversation (or token ids from token ids).",
            discussion: """
                The input is one of:
                  --prompt TEXT         text (a bos token added if the model asks for one)
                  --chat MESSAGES.json  a conversation, [{"role": "user", "content": "..."}],
                                        rendered with the model's chat template
                  --tokens 5,17,3       token ids; prints the generated ids

                Text is streamed to stdout as it is generated and stops at the end of the turn (a stop token \
                of the tokenizer) or after --max-new tokens. The tokenizer is the GGUF file's tokenizer keys \
                or the checkpoint folder's tokenizer.json.

                Decoding is greedy unless --temperature is above 0; then --top-k, --top-p and --min-p narrow \
                the draw (applied in that order, after the temperature, as transformers does) and --seed makes \
                it repeatable. --repeat-penalty applies to greedy and sampled decoding.

                The exit mode picks which loop step's logits decide:
                  last          the last loop step
                  step:K        loop step K (1-based)
                  threshold:Q   per token, the first step whose cumulative exit probability reaches Q
                  weighted      the exit-probability-weighted mix of every step's logits
                Default: as the original model does (config early_exit_threshold, else last step).

                Adaptive depth (cached decoding; Docs/ADAPTIVE_DEPTH.md):
                  --exit threshold:Q    each generated token stops looping at its exit step: the deeper \
                steps are not computed and their K/V slots get the exit step's K/V (with --kv-share \
                last the kept K/V is the exit step's; an approximation of the full computation; \
                --full-depth computes every step and picks the same logits)
                  --speculate K         self-speculative decoding: draft K tokens with the first \
                --draft-steps loop steps, verify them with the full model in one pass; greedy output is \
                exactly plain greedy's, sampled output has the same distribution (needs --kv-share full)
                """)

        @Argument(help: "A .gguf file or a checkpoint folder.")
        var model: String

        @Option(help: "Prompt text.")
        var prompt: String?

        @Option(name: .customLong("chat"), help: "A JSON file with the conversation to answer.")
        var chatFile: String?

        @Option(help: "Prompt token ids, comma-separated (e.g. 5,17,3).")
        var tokens: String?

        @Option(help: "How many tokens to generate at most (default: 256 with --prompt/--chat, 12 with --tokens).")
        var maxNew: Int?

        private var newTokens: Int { maxNew ?? (tokens == nil ? 256 : 12) }

        @OptionGroup var depth: DepthArguments

        @OptionGroup var sampling: SamplingArguments

        @OptionGroup var conversation: ConversationArguments

        @OptionGroup var kv: KVCacheArguments

        @OptionGroup var context: ContextLimitArgument

        @Flag(help: "Recompute the whole sequence for every token instead of using the KV cache (--tokens, greedy).")
        var noCache = false

        @Flag(help: "Print JSON: with --prompt/--chat the prompt and generated ids, the text and timings.")
        var json = false

        @Option(help: "Threads (default: number of online CPUs). With 1, decode_cpu_seconds in --json is the decode's own compute.")
        var threads: Int?

        func validate() throws {
            guard newTokens >= 0 else { throw ValidationError("'--max-new' must be 0 or more") }
            guard (threads ?? 1) >= 1 else { throw ValidationError("'--threads' must be 1 or more") }
            let inputs = [prompt != nil, chatFile != nil, tokens != nil].filter { $0 }.count
            guard inputs == 1 else { throw ValidationError("give exactly one of '--prompt', '--chat' or '--tokens'") }
            if let tokens {
                guard !tokens.isEmpty, tokens.split(separator: ",").allSatisfy({ Int($0.trimmingCharacters(in: .whitespaces)) != nil }) else {
                    throw ValidationError("'--tokens' takes comma-separated integers, e.g. --tokens 5,17,3")
                }
            } else if noCache {
                throw ValidationError("'--no-cache' applies to '--tokens' only")
            }
            if noCache && !sampling.isPlainGreedy {
                throw ValidationError("'--no-cache' works with plain greedy decoding only; drop '--temperature' / '--repeat-penalty'")
            }
            if chatFile == nil && conversation.anyGiven {
                throw ValidationError("'--system', '--thinking' and '--chat-format' apply to '--chat' only")
            }
            if prompt == "" { throw ValidationError("'--prompt' is empty") }
            if noCache && (kv.kvType != .f16 || kv.kvShare != .full || context.contextLimit != nil) {
                throw ValidationError("'--kv-type', '--kv-share' and '--ctx' apply to the KV cache; drop '--no-cache'")
            }
            if noCache && (depth.speculate > 0 || depth.earlyExit) {
                throw ValidationError("early exit and '--speculate' need the KV cache; drop '--no-cache'")
            }
            try depth.check(kvShare: kv.kvShare)
        }

        func run() throws {
            if let tokens {
                try runTokens(tokens.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) })
                return
            }
            let (tokenizer, runner, ids) = try reportingBadInput { () -> (Tokenizer, OuroRunner, [Int]) in
                let tokenizer = try loadTokenizer(model)
                let ids: [Int]
                if let prompt {
                    let bos = tokenizer.addBOS ? tokenizer.bosToken.flatMap { tokenizer.id(of: $0) } : nil
                    ids = (bos.map { [$0] } ?? []) + tokenizer.encode(prompt)
                } else {
                    let messages = try conversation.withSystem(try ChatMessage.load(path: chatFile!))
                    ids = try conversation.prompt(messages, template: try conversation.template(tokenizer, model: model), tokenizer: tokenizer).ids
                }
                guard !ids.isEmpty else { throw CLIError("the prompt has no tokens") }
                let runner = OuroRunner(weights: try loadWeights(model), threads: threads)
                let limit = try kv.options(contextLimit: context.contextLimit).context(for: runner.config)
                guard ids.count < limit else {
                    throw CLIError("the prompt has \(ids.count) tokens; the context takes at most \(limit) positions"
                                   + (context.contextLimit == nil ? " (the model's max_position_embeddings)" : " (--ctx)"))
                }
                return (tokenizer, runner, ids)
            }
            var sampler = Sampler(sampling.options)
            let answer = try reportingBadInput { () -> GeneratedAnswer in
                let session = try OuroSession(runner: runner, exit: depth.exit?.mode, kv: kv.options(contextLimit: context.contextLimit),
                                              initialCapacity: ids.count + newTokens)
                session.earlyExit = depth.earlyExit
                return try generateAnswer(session: session, prompt: ids, maxNew: newTokens, sampler: &sampler, tokenizer: tokenizer,
                                          speculation: try depth.speculation(runner), write: json ? { _ in } : writeToStandardOutput)
            }
            if json {
                struct Output: Encodable {
                    let prompt: [Int]; let generated: [Int]; let text: String; let stop_reason: GeneratedAnswer.StopReason
                    let prefill_seconds: Double; let decode_seconds: Double; let decode_tokens_per_second: Double
                    let decode_cpu_seconds: Double
                    let mean_loop_steps: Double?; let acceptance_rate: Double?
                }
                print(try jsonString(Output(prompt: ids, generated: answer.ids, text: answer.text, stop_reason: answer.stopReason,
                                            prefill_seconds: answer.prefillSeconds, decode_seconds: answer.decodeSeconds,
                                            decode_tokens_per_second: answer.decodeTokensPerSecond,
                                            decode_cpu_seconds: answer.decodeCPUSeconds,
                                            mean_loop_steps: answer.meanLoopSteps, acceptance_rate: answer.acceptanceRate)))
            } else if !answer.text.hasSuffix("\n") {
                writeToStandardOutput("\n")
            }
        }

        /// Ids in, ids out (the original interface; no tokenizer involved, no stop tokens).
        private func runTokens(_ prompt: [Int]) throws {
            let started = Date()
            let (generated, answer) = try reportingBadInput { () -> ([Int], GeneratedAnswer?) in
                let weights = try loadWeights(model)
                let runner = OuroRunner(weights: weights, threads: threads)
                let mode = depth.exit?.mode ?? runner.defaultExitMode
                if noCache {
                    return (try runner.generate(prompt: prompt, maxNewTokens: newTokens, cached: false, exit: mode), nil)
                }
                guard prompt.count + newTokens <= runner.config.maxPositions else {
                    throw CLIError("\(prompt.count) + \(newTokens) positions exceed the model's \(runner.config.maxPositions)")
                }
                let session = try OuroSession(runner: runner, exit: mode, kv: kv.options(contextLimit: context.contextLimit),
                                              initialCapacity: prompt.count + newTokens)
                session.earlyExit = depth.earlyExit
                var sampler = Sampler(sampling.options)
                let answer = try generateAnswer(session: session, prompt: prompt, maxNew: newTokens, sampler: &sampler, tokenizer: nil,
                                                speculation: try depth.speculation(runner), write: { _ in })
                return (answer.ids, answer)
            }
            let seconds = Date().timeIntervalSince(started)
            if json {
                struct Output: Encodable {
                    let prompt: [Int]; let generated: [Int]; let seconds: Double
                    let prefill_seconds: Double?; let decode_seconds: Double?; let decode_tokens_per_second: Double?
                    let decode_cpu_seconds: Double?
                    let mean_loop_steps: Double?; let acceptance_rate: Double?
                }
                print(try jsonString(Output(prompt: prompt, generated: generated, seconds: seconds,
                                            prefill_seconds: answer?.prefillSeconds, decode_seconds: answer?.decodeSeconds,
                                            decode_tokens_per_second: answer?.decodeTokensPerSecond,
                                            decode_cpu_seconds: answer?.decodeCPUSeconds,
                                            mean_loop_steps: answer?.meanLoopSteps, acceptance_rate: answer?.acceptanceRate)))
            } else {
                print(generated.map(String.init).joined(separator: ","))
            }
        }
    }
}
