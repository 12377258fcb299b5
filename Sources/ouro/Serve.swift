import ArgumentParser
import Foundation
import OuroModel
import OuroServer
import OuroTokenizer

extension OuroCommand {
    struct Serve: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Serve a model over HTTP with OpenAI's API (chat and text completions), batching concurrent requests.",
            discussion: """
                Endpoints:
                  POST /v1/chat/completions   messages rendered with the model's chat template
                  POST /v1/completions        a text prompt, or an array of token ids
                  GET  /v1/models             the one model served (its id: --name)
                  GET  /health                {"status": "ok", "running": N, "waiting": N, "slots": N}
                "stream": true answers with server-sent events in OpenAI's chunk format, ending with \
                "data: [DONE]". Supported: temperature (default 1), top_p, max_tokens, stop, seed, n = 1, \
                stream_options.include_usage; "ouro": {"exit": "threshold:0.9"} picks the exit mode per request, \
                and every answer carries an "ouro" object (exit mode, tokens per exit step, mean expected exit \
                step, the completion's token ids).

                Up to --parallel requests run together: each step is one forward pass over every running \
                request (one token each, plus up to --prefill-chunk prompt tokens of those starting), so \
                the weights are read once for all of them. Up to --queue more wait; beyond that the answer \
                is 503 with Retry-After. A request may use --ctx positions (prompt + max_tokens); without \
                max_tokens it may run to the end of that context. Each running request holds a KV cache of \
                up to --ctx positions, allocated as positions arrive (--kv-type, --kv-share; f16 full: \
                768 KiB per position on the 1.4B model, Docs/KV-CACHE.md).

                SIGTERM or Ctrl-C: stop accepting, let the answers already running finish (cancelled after \
                --shutdown-grace seconds), exit 0.

                Example:
                  ouro serve ouro-q4.gguf --port 8080 --parallel 4
                  curl http://127.0.0.1:8080/v1/chat/completions -H 'Content-Type: application/json' \\
                    -d '{"model": "ouro-q4", "messages": [{"role": "user", "content": "Hi"}]}'
                """)

        @Argument(help: "A .gguf file or a checkpoint folder.")
        var model: String

        @Option(help: "Address to listen on (127.0.0.1: this machine only).")
        var host = "127.0.0.1"

        @Option(help: "Port to listen on.")
        var port = 8080

        @Option(help: "Requests generated together in each batched step.")
        var parallel = 4

        @Option(help: "Requests that may wait for a slot; more get 503 with Retry-After.")
        var queue = 16

        @Option(help: "Positions per request, prompt + max_tokens (default: the model's maximum, at most 4096).")
        var ctx: Int?

        @OptionGroup(title: "KV cache")
        var kv: KVCacheArguments

        @Option(help: "Require 'Authorization: Bearer KEY' on every endpoint but /health.")
        var apiKey: String?

        @Option(help: "The model id clients pass as \"model\" (default: the file or folder name without .gguf).")
        var name: String?

        @Option(help: "Default exit mode: last, step:K, threshold:Q or weighted (requests may set \"ouro\": {\"exit\": ...}).")
        var exit: ExitArgument?

        @Option(help: "Tokenizer (a .gguf file or a folder with tokenizer.json) when the model has none.")
        var tokenizer: String?

        @Option(help: "Chat prompts: model (the tokenizer's chat template, default) or chatml.")
        var chatFormat: ConversationArguments.ChatFormat = .model

        @Option(help: "Prompt tokens run per step at most, shared by the requests starting (keeps running streams moving).")
        var prefillChunk = 64

        @Option(help: "Largest request body accepted, in bytes; larger gets 413.")
        var maxBody = 1 << 20

        @Option(help: "Threads (default: number of online CPUs).")
        var threads: Int?

        @Option(help: "Seconds running answers may take to finish after SIGTERM/SIGINT before they are cancelled.")
        var shutdownGrace: Double = 30

        @Flag(inversion: .prefixedNo, help: ArgumentHelp(
            "With --parallel above 1, keep a copy of the Q4_0/Q8_0 matrices packed for the batched steps' kernels (off by default).",
            discussion: "Costs as much memory again as those matrices (Ouro-1.4B: ~0.7 GiB q4_0, ~1.4 GiB q8_0), made at start; one request at a time still reads the file's weights. Nothing on CPUs without those kernels (AVX-512 VNNI), nothing for Q4_K matrices (their batched kernel reads the file's weights). Off by default: 4 streams of the 1.4B q4_0 cost ~10 % less CPU per token with it on a Zen 4 and nothing less on a Zen 5; on q8_0 the packed kernel is the slower one (Docs/BENCHMARKS.md)."))
        var packWeights = false

        func validate() throws {
            guard (0...65535).contains(port) else { throw ValidationError("'--port' must be in 0...65535") }
            guard parallel >= 1 else { throw ValidationError("'--parallel' must be 1 or more") }
            guard queue >= 0 else { throw ValidationError("'--queue' must be 0 or more") }
            guard (ctx ?? 2) >= 2 else { throw ValidationError("'--ctx' must be 2 or more") }
            guard prefillChunk >= 1 else { throw ValidationError("'--prefill-chunk' must be 1 or more") }
            guard maxBody >= 1024 else { throw ValidationError("'--max-body' must be 1024 or more") }
            guard (threads ?? 1) >= 1 else { throw ValidationError("'--threads' must be 1 or more") }
            if apiKey == "" { throw ValidationError("'--api-key' is empty") }
            guard shutdownGrace >= 0 && shutdownGrace.isFinite else { throw ValidationError("'--shutdown-grace' must be 0 or more") }
        }

        func run() throws {
            let (server, tokenizerNote) = try reportingBadInput { () -> (OpenAIServer, String) in
                let runner = OuroRunner(weights: try loadWeights(model), threads: threads)
                let config = runner.config
                let context = min(ctx ?? min(config.maxPositions, 4096), config.maxPositions)
                if let ctx, ctx > config.maxPositions {
                    throw CLIError("'--ctx' \(ctx) exceeds the model's \(config.maxPositions) positions")
                }
                // A cache type the model cannot use (q8_0 needs head_dim % 32 == 0) fails here, not per request.
                _ = try kv.options().context(for: config)
                var loaded: Tokenizer?
                if let tokenizer {
                    loaded = try loadTokenizer(tokenizer)
                } else {
                    loaded = try? loadTokenizer(model)
                }
                var template: ChatTemplate?
                if let loaded {
                    if chatFormat == .chatml {
                        template = ChatTemplate.chatML
                    } else if let source = loaded.chatTemplate {
                        template = try ChatTemplate(source: source, name: (tokenizer ?? model) + " (chat template)")
                    }
                } else if chatFormat == .chatml {
                    throw CLIError("'--chat-format chatml' needs a tokenizer; \(model) has none (pass '--tokenizer')")
                }
                let mode = exit?.mode ?? runner.defaultExitMode
                if case let .step(k) = mode, k >= config.loopCount {
                    throw CLIError("'--exit' step:\(k + 1) is beyond the model's \(config.loopCount) loop steps")
                }
                let modelName = name ?? URL(fileURLWithPath: model).lastPathComponent.replacingOccurrences(of: ".gguf", with: "")
                var options = ServerOptions(modelName: modelName, context: context, defaultExit: mode)
                options.host = host
                options.port = port
                options.apiKey = apiKey
                options.maxBodyBytes = maxBody
                // Only batched steps (2+ requests at once) read the packed copy.
                let packed = packWeights && parallel > 1 ? LeanPackedWeights(weights: runner.weights, threads: runner.threads) : nil
                let forward = BatchedForward(runner: runner, throughputKernels: true, packedWeights: packed)
                let scheduler = Scheduler(forward: forward, tokenizer: loaded, parallel: parallel,
                                          queueLimit: queue, prefillChunk: prefillChunk, kv: kv.options())
                let packNote = packed.map { $0.byteCount > 0 ? "; \($0.byteCount >> 20) MiB of weights packed for batched steps" : "" } ?? ""
                let note = (loaded == nil ? "no tokenizer: /v1/completions takes token-id prompts, answers carry ids only"
                    : template == nil ? "no chat template: /v1/chat/completions is off (--chat-format chatml enables ChatML)" : "chat template: \(chatFormat == .chatml ? "ChatML" : "the model's")") + packNote
                return (OpenAIServer(options: options, scheduler: scheduler, template: template), note)
            }
            server.scheduler.start()
            // The HTTP server stops accepting on SIGTERM/SIGINT and waits for open responses; new
            // requests on open connections get 503, and answers still running after the grace are cancelled.
            let scheduler = server.scheduler, grace = shutdownGrace
            var signalSources: [DispatchSourceSignal] = []
            for signalNumber in [SIGTERM, SIGINT] {
                let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
                source.setEventHandler {
                    scheduler.refuseNewRequests()
                    DispatchQueue.global().asyncAfter(deadline: .now() + grace) { scheduler.cancelAll() }
                }
                source.resume()
                signalSources.append(source)
            }
            defer { signalSources.forEach { $0.cancel() } }
            let options = server.options
            let done = DispatchSemaphore(value: 0)
            nonisolated(unsafe) var failure: Error?
            Task {
                do {
                    try await server.run {
                        printError("ouro serve: \(options.modelName) on http://\(options.host):\(options.port) (\(server.scheduler.parallel) slots, context \(options.context); \(tokenizerNote))")
                    }
                } catch {
                    failure = error
                }
                done.signal()
            }
            done.wait()
            // The listener is closed and open connections have finished; let queued work end too.
            server.scheduler.stopAndWait()
            if let failure {
                printError("ouro: \(failure)")
                throw ExitCode(2)
            }
            printError("ouro serve: stopped")
        }
    }
}
