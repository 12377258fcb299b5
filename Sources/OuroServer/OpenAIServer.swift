import Foundation
import Hummingbird
import OuroModel
import OuroTokenizer

/// How `ouro serve` was asked to serve.
public struct ServerOptions: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// The id clients name in `model` (GET /v1/models lists it).
    public var modelName: String
    /// Positions one request may use at most: prompt + max_tokens.
    public var context: Int
    public var apiKey: String?
    public var maxBodyBytes = 1 << 20
    public var defaultExit: ExitMode

    public init(modelName: String, context: Int, defaultExit: ExitMode) {
        self.modelName = modelName
        self.context = context
        self.defaultExit = defaultExit
    }
}

/// The OpenAI-compatible HTTP API over a `Scheduler`: POST /v1/chat/completions, POST /v1/completions,
/// GET /v1/models, GET /health. Every error is `{"error": {"message", "type", "code"}}` with a 4xx/5xx.
public struct OpenAIServer: Sendable {
    public let options: ServerOptions
    public let scheduler: Scheduler
    /// The chat template conversations are rendered with (nil: the chat endpoint answers 400).
    public let template: ChatTemplate?
    let created = Int(Date().timeIntervalSince1970)

    public init(options: ServerOptions, scheduler: Scheduler, template: ChatTemplate?) {
        self.options = options
        self.scheduler = scheduler
        self.template = template
    }

    /// Serves until SIGTERM/SIGINT: then stops accepting, lets running requests finish, and returns.
    public func run(onRunning: @escaping @Sendable () -> Void) async throws {
        let router = Router()
        router.add(middleware: ErrorAndAuthMiddleware(apiKey: options.apiKey))
        router.get("health") { _, _ in
            let load = scheduler.load
            return json(["status": "ok", "running": load.running, "waiting": load.waiting, "slots": scheduler.parallel])
        }
        router.get("v1/models") { _, _ in
            json(["object": "list", "data": [["id": options.modelName, "object": "model", "created": created, "owned_by": "ourokit"]]])
        }
        router.post("v1/chat/completions") { request, _ in try await complete(request, chat: true) }
        router.post("v1/completions") { request, _ in try await complete(request, chat: false) }
        let app = Application(router: router,
                              configuration: .init(address: .hostname(options.host, port: options.port), serverName: "ouro"),
                              onServerRunning: { _ in onRunning() })
        try await app.runService()
    }

    private func complete(_ request: Request, chat: Bool) async throws -> Response {
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: options.maxBodyBytes)
        } catch {
            throw APIError(status: 413, message: "the request body is larger than \(options.maxBodyBytes) bytes", code: "body_too_large")
        }
        let parsed = try CompletionRequest.parse(Data(body.readableBytesView), chat: chat)
        guard parsed.model == options.modelName else {
            throw APIError(status: 404, message: "model '\(parsed.model)' is not served here; GET /v1/models lists '\(options.modelName)'",
                           type: "not_found_error", code: "model_not_found")
        }
        let job = try makeJob(parsed)
        let ticket = try scheduler.submit(job)
        let id = (chat ? "chatcmpl-" : "cmpl-") + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        let created = Int(Date().timeIntervalSince1970)
        let model = options.modelName
        if !parsed.stream {
            defer { ticket.cancel() }
            var text = ""
            for await event in ticket.events {
                switch event {
                case let .text(piece): text += piece
                case .token: break
                case let .failed(error): throw error
                case let .finished(summary):
                    let choice: [String: Any] = chat
                        ? ["index": 0, "message": ["role": "assistant", "content": text], "finish_reason": summary.finishReason, "logprobs": NSNull()]
                        : ["index": 0, "text": text, "finish_reason": summary.finishReason, "logprobs": NSNull()]
                    return json(["id": id, "object": chat ? "chat.completion" : "text_completion", "created": created, "model": model,
                                 "choices": [choice], "usage": usage(summary), "ouro": ouroObject(summary)])
                }
            }
            throw APIError(status: 500, message: "the generation ended without a result", type: "server_error", code: "cancelled")
        }
        let object = chat ? "chat.completion.chunk" : "text_completion"
        let includeUsage = parsed.includeUsageInStream
        let stream = ResponseBody { writer in
            // Leaving early (the client went away: a write threw) cancels the generation and frees its slot.
            defer { ticket.cancel() }
            func send(_ value: [String: Any]) async throws {
                let data = (try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys])) ?? Data()
                try await writer.write(ByteBuffer(string: "data: " + String(decoding: data, as: UTF8.self) + "\n\n"))
            }
            func chunk(_ content: String?, finish: String?) -> [String: Any] {
                let choice: [String: Any] = chat
                    ? ["index": 0, "delta": content.map { ["content": $0] } ?? [:], "finish_reason": finish ?? NSNull(), "logprobs": NSNull()]
                    : ["index": 0, "text": content ?? "", "finish_reason": finish ?? NSNull(), "logprobs": NSNull()]
                return ["id": id, "object": object, "created": created, "model": model, "choices": [choice]]
            }
            if chat {
                var first = chunk(nil, finish: nil)
                first["choices"] = [["index": 0, "delta": ["role": "assistant", "content": ""], "finish_reason": NSNull(), "logprobs": NSNull()]]
                try await send(first)
            }
            for await event in ticket.events {
                switch event {
                case let .text(piece): try await send(chunk(piece, finish: nil))
                case let .token(id):
                    // No tokenizer: an empty text chunk per token, carrying the id.
                    var event = chunk(chat ? nil : "", finish: nil)
                    event["ouro"] = ["token_id": id]
                    try await send(event)
                case let .failed(error):
                    try await send(["error": ["message": error.message, "type": error.type, "code": error.code]])
                case let .finished(summary):
                    var last = chunk(chat ? nil : "", finish: summary.finishReason)
                    last["ouro"] = ouroObject(summary)
                    try await send(last)
                    if includeUsage {
                        try await send(["id": id, "object": object, "created": created, "model": model, "choices": [], "usage": usage(summary)])
                    }
                }
            }
            try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: stream)
    }

    /// Tokenizes and bounds the request against the context.
    private func makeJob(_ request: CompletionRequest) throws -> GenerationJob {
        let config = scheduler.forward.runner.config
        let tokenizer = scheduler.tokenizer
        var prompt: [Int]
        switch request.input {
        case let .messages(messages):
            guard let tokenizer, let template else {
                throw APIError.invalid("this model has no chat template (or no tokenizer); use /v1/completions", code: "no_chat_template")
            }
            do {
                let text = try template.render(messages, addGenerationPrompt: true, bosToken: tokenizer.bosToken,
                                               eosToken: tokenizer.eosToken, enableThinking: nil)
                prompt = tokenizer.encode(text)
            } catch {
                throw APIError.invalid("\(error)", code: "chat_template_error")
            }
        case let .text(text):
            guard let tokenizer else {
                throw APIError.invalid("this model has no tokenizer: give 'prompt' as an array of token ids", code: "no_tokenizer")
            }
            let bos = tokenizer.addBOS ? tokenizer.bosToken.flatMap { tokenizer.id(of: $0) } : nil
            prompt = (bos.map { [$0] } ?? []) + tokenizer.encode(text)
        case let .tokenIDs(ids):
            if let bad = ids.first(where: { $0 < 0 || $0 >= config.vocabSize }) {
                throw APIError.invalid("'prompt' has token id \(bad); the vocabulary has ids 0..<\(config.vocabSize)", code: "invalid_value")
            }
            prompt = ids
        }
        guard !prompt.isEmpty else { throw APIError.invalid("the prompt has no tokens", code: "invalid_value") }
        let context = options.context
        guard prompt.count < context else {
            throw APIError.invalid("the prompt has \(prompt.count) tokens; this server's context is \(context) (prompt + max_tokens)",
                                   code: "context_length_exceeded")
        }
        let maxTokens = request.maxTokens ?? (context - prompt.count)
        guard prompt.count + maxTokens <= context else {
            throw APIError.invalid("prompt (\(prompt.count) tokens) + max_tokens (\(maxTokens)) exceed this server's context of \(context)",
                                   code: "context_length_exceeded")
        }
        let exit = request.exit ?? options.defaultExit
        if case let .step(k) = exit, k >= config.loopCount {
            throw APIError.invalid("'ouro.exit' step:\(k + 1) is beyond the model's \(config.loopCount) loop steps", code: "invalid_value")
        }
        return GenerationJob(prompt: prompt, maxTokens: maxTokens, sampling: request.sampling, stop: request.stop, exit: exit)
    }

    private func usage(_ s: GenerationSummary) -> [String: Any] {
        ["prompt_tokens": s.promptTokens, "completion_tokens": s.completionIDs.count, "total_tokens": s.promptTokens + s.completionIDs.count]
    }

    private func ouroObject(_ s: GenerationSummary) -> [String: Any] {
        ["exit": s.exit.argument, "loop_steps": s.exitStepCounts.count, "exit_step_counts": s.exitStepCounts,
         "mean_expected_exit_step": s.meanExpectedExitStep, "completion_ids": s.completionIDs,
         "queue_and_prefill_seconds": s.queueAndPrefillSeconds, "decode_seconds": s.decodeSeconds]
    }
}

/// A JSON response.
func json(_ object: [String: Any], status: HTTPResponse.Status = .ok, headers extra: [(String, String)] = []) -> Response {
    let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
    var headers: HTTPFields = [.contentType: "application/json"]
    for (name, value) in extra { headers[.init(name)!] = value }
    return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: Array(data))))
}

/// Checks `Authorization: Bearer KEY` (when a key is set; /health stays open) and turns every error
/// into OpenAI's error object, so clients always get `{"error": {...}}`.
struct ErrorAndAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let apiKey: String?

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            if let apiKey, request.uri.path != "/health" {
                let header = request.headers[.authorization] ?? ""
                guard header == "Bearer " + apiKey else {
                    throw APIError(status: 401, message: header.isEmpty ? "missing 'Authorization: Bearer <key>'" : "invalid API key",
                                   type: "authentication_error", code: "invalid_api_key")
                }
            }
            return try await next(request, context)
        } catch let error as APIError {
            return respond(error)
        } catch let error as HTTPError {
            let code: String
            switch error.status.code {
            case 404: code = "not_found"
            case 405: code = "method_not_allowed"
            case 413: code = "body_too_large"
            default: code = "http_\(error.status.code)"
            }
            let message = error.status.code == 404 ? "no route \(request.method) \(request.uri.path)" : (error.body ?? error.status.reasonPhrase)
            return respond(APIError(status: error.status.code, message: message, type: error.status.code >= 500 ? "server_error" : "invalid_request_error", code: code))
        } catch {
            return respond(APIError(status: 500, message: "\(error)", type: "server_error", code: "internal_error"))
        }
    }

    private func respond(_ error: APIError) -> Response {
        json(["error": ["message": error.message, "type": error.type, "code": error.code]],
             status: HTTPResponse.Status(code: error.status), headers: error.headers)
    }
}
