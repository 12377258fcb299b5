import Foundation
import OuroModel
import OuroTokenizer

/// What a generation reports to the HTTP side, in order: text pieces as they complete, then one end.
public enum GenerationEvent: Sendable {
    case text(String)
    /// A drawn token, sent only when there is no tokenizer (so id-only streams still advance per token).
    case token(Int)
    case finished(GenerationSummary)
    case failed(APIError)
}

/// How a generation ended, with its counts and loop statistics.
public struct GenerationSummary: Sendable {
    /// OpenAI's finish_reason: "stop" (a stop token or stop string) or "length" (max_tokens or the context).
    public var finishReason = "length"
    public var promptTokens = 0
    /// Every drawn token, a final stop token included (as `usage.completion_tokens` counts).
    public var completionIDs: [Int] = []
    public var exit: ExitMode = .lastStep
    /// Per loop step (0-based), how many tokens took their logits from it (threshold, step and last
    /// modes; all zero for weighted, which mixes every step).
    public var exitStepCounts: [Int] = []
    /// Mean over the tokens of Σ_s (s+1)·p_s, the expected exit step (1-based) by the exit gate.
    public var meanExpectedExitStep = 0.0
    /// Time from submission to the first token, and from there to the last.
    public var queueAndPrefillSeconds = 0.0
    public var decodeSeconds = 0.0
}

/// One generation to run: a tokenized prompt and how to answer it.
public struct GenerationJob: Sendable {
    public var prompt: [Int]
    public var maxTokens: Int
    public var sampling: SamplingOptions
    public var stop: [String]
    public var exit: ExitMode
}

/// A handle the HTTP side holds: the event stream and a way to cancel (client gone).
public final class GenerationTicket: @unchecked Sendable {
    public let events: AsyncStream<GenerationEvent>
    let continuation: AsyncStream<GenerationEvent>.Continuation
    private let lock = NSLock()
    private var cancelledFlag = false

    init() {
        (events, continuation) = AsyncStream.makeStream(of: GenerationEvent.self, bufferingPolicy: .unbounded)
    }

    /// Stops the generation at the next step and frees its slot.
    public func cancel() {
        lock.lock(); cancelledFlag = true; lock.unlock()
    }

    var isCancelled: Bool {
        lock.lock(); defer { lock.unlock() }
        return cancelledFlag
    }
}

/// Continuous batching on one dedicated thread: up to `parallel` generations share each forward pass
/// (one decode token each, plus at most `prefillChunk` prompt tokens of those still prefilling, so
/// running streams never wait for a long prompt); requests join and leave between passes. Beyond the
/// slots, up to `queueLimit` requests wait; more are refused (the HTTP side answers 503).
/// The forward pass runs on its own thread, not on Swift concurrency's or NIO's threads, so the
/// server keeps accepting and answering while the CPU is busy with the model.
public final class Scheduler: @unchecked Sendable {
    public let forward: BatchedForward
    public let tokenizer: Tokenizer?
    public let parallel: Int
    public let queueLimit: Int
    public let prefillChunk: Int
    /// How every request's KV cache stores keys and values.
    public let kv: KVCacheOptions

    private let condition = NSCondition()
    private var waiting: [(job: GenerationJob, ticket: GenerationTicket, submitted: UInt64)] = []
    private var active: [Slot] = []
    private var stopping = false
    private var thread: Thread?
    private let finishedGroup = DispatchGroup()

    /// Steps run and rows per step, for /health and benchmarks.
    public private(set) var stepsRun = 0
    /// OURO_SERVE_PROFILE=1 only.
    private let profiler = StepProfiler.fromEnvironment()

    public init(forward: BatchedForward, tokenizer: Tokenizer?, parallel: Int, queueLimit: Int, prefillChunk: Int = 64,
                kv: KVCacheOptions = KVCacheOptions()) {
        self.forward = forward
        self.kv = kv
        self.tokenizer = tokenizer
        self.parallel = max(1, parallel)
        self.queueLimit = max(0, queueLimit)
        self.prefillChunk = max(1, prefillChunk)
    }

    public func start() {
        finishedGroup.enter()
        let thread = Thread { [self] in
            loop()
            finishedGroup.leave()
        }
        thread.name = "ouro-scheduler"
        thread.stackSize = 8 << 20
        self.thread = thread
        thread.start()
    }

    /// Finishes what runs and waits (generations already admitted or queued still complete).
    public func stopAndWait() {
        condition.lock(); stopping = true; condition.broadcast(); condition.unlock()
        finishedGroup.wait()
    }

    /// Refuses new requests from now on (503); what is queued or running goes on.
    public func refuseNewRequests() {
        condition.lock(); stopping = true; condition.broadcast(); condition.unlock()
    }

    /// Cancels everything queued or running (each answer ends with a "cancelled" error).
    public func cancelAll() {
        condition.lock()
        for w in waiting { w.ticket.cancel() }
        for s in active { s.ticket.cancel() }
        condition.unlock()
    }

    /// (running, waiting) generations.
    public var load: (running: Int, waiting: Int) {
        condition.lock(); defer { condition.unlock() }
        return (active.count, waiting.count)
    }

    /// Queues `job`; throws a 503 when every slot is busy and the queue is full.
    public func submit(_ job: GenerationJob) throws -> GenerationTicket {
        let ticket = GenerationTicket()
        condition.lock()
        defer { condition.unlock() }
        guard !stopping else {
            throw APIError(status: 503, message: "the server is shutting down", type: "server_error", code: "shutting_down")
        }
        let free = parallel - active.count
        guard waiting.count < free + queueLimit else {
            throw APIError(status: 503, message: "all \(parallel) slots are busy and \(queueLimit) requests are waiting; retry later",
                           type: "server_error", code: "server_busy", headers: [("Retry-After", "1")])
        }
        waiting.append((job, ticket, DispatchTime.now().uptimeNanoseconds))
        condition.signal()
        return ticket
    }

    /// One running generation.
    private final class Slot {
        let job: GenerationJob
        let ticket: GenerationTicket
        let sequence: BatchSequence
        let submitted: UInt64
        var firstToken: UInt64 = 0
        var prefilled = 0
        /// The token drawn last, not yet run (decoding).
        var pendingToken: Int?
        var sampler: Sampler
        var decoder: StreamingDecoder?
        var stopper: StopStringFilter
        var summary = GenerationSummary()
        var expectedExitSum = 0.0
        var done = false

        init(job: GenerationJob, ticket: GenerationTicket, sequence: BatchSequence, submitted: UInt64, tokenizer: Tokenizer?, steps: Int) {
            self.job = job
            self.ticket = ticket
            self.sequence = sequence
            self.submitted = submitted
            sampler = Sampler(job.sampling)
            decoder = tokenizer.map { StreamingDecoder(tokenizer: $0) }
            stopper = StopStringFilter(stops: job.stop)
            summary.promptTokens = job.prompt.count
            summary.exit = job.exit
            summary.exitStepCounts = Array(repeating: 0, count: steps)
        }

        func finish(_ reason: String) {
            done = true
            summary.finishReason = reason
            if let tail = decoder?.finish(), !tail.isEmpty { emit(stopper.push(tail)) }
            emit(stopper.flush())
            let now = DispatchTime.now().uptimeNanoseconds
            summary.queueAndPrefillSeconds = Double((firstToken == 0 ? now : firstToken) - submitted) / 1e9
            summary.decodeSeconds = firstToken == 0 ? 0 : Double(now - firstToken) / 1e9
            summary.meanExpectedExitStep = summary.completionIDs.isEmpty ? 0 : expectedExitSum / Double(summary.completionIDs.count)
            ticket.continuation.yield(.finished(summary))
            ticket.continuation.finish()
        }

        func fail(_ error: APIError) {
            done = true
            ticket.continuation.yield(.failed(error))
            ticket.continuation.finish()
        }

        func emit(_ text: String) {
            if !text.isEmpty { ticket.continuation.yield(.text(text)) }
        }
    }

    private func loop() {
        while true {
            condition.lock()
            if active.isEmpty && waiting.isEmpty { profiler?.flush() }
            while active.isEmpty && waiting.isEmpty && !stopping { condition.wait() }
            if stopping && active.isEmpty && waiting.isEmpty {
                condition.unlock()
                return
            }
            var admitted: [(GenerationJob, GenerationTicket, UInt64)] = []
            while active.count + admitted.count < parallel && !waiting.isEmpty {
                let w = waiting.removeFirst()
                admitted.append((w.job, w.ticket, w.submitted))
            }
            condition.unlock()

            var joined: [Slot] = []
            for (job, ticket, submitted) in admitted {
                if ticket.isCancelled {
                    ticket.continuation.yield(.failed(APIError(status: 503, message: "the generation was cancelled", type: "server_error", code: "cancelled")))
                    ticket.continuation.finish()
                    continue
                }
                do {
                    let sequence = try forward.makeSequence(exit: job.exit, kv: kv,
                                                            maxPositions: job.prompt.count + job.maxTokens)
                    joined.append(Slot(job: job, ticket: ticket, sequence: sequence, submitted: submitted, tokenizer: tokenizer,
                                       steps: forward.runner.config.loopCount))
                } catch {
                    ticket.continuation.yield(.failed(APIError(status: 400, message: "\(error)", code: "invalid_request")))
                    ticket.continuation.finish()
                }
            }
            condition.lock()
            active += joined
            condition.unlock()

            step()

            condition.lock()
            active.removeAll { $0.done }
            condition.unlock()
        }
    }

    /// One batched forward pass over every running generation, then one token drawn for each that
    /// finished its prompt or was decoding.
    private func step() {
        // Only this thread mutates `active`'s elements; the lock guards the array against `load`.
        condition.lock()
        let slots = active
        condition.unlock()
        for slot in slots where slot.ticket.isCancelled {
            // The client is gone (nobody reads this) or the server's shutdown grace ran out.
            slot.fail(APIError(status: 503, message: "the generation was cancelled", type: "server_error", code: "cancelled"))
        }
        var items: [(sequence: BatchSequence, tokens: [Int])] = []
        var needsLogits: [Bool] = []
        var runSlots: [Slot] = []
        var budget = prefillChunk
        for slot in slots where !slot.done {
            if let token = slot.pendingToken {
                items.append((slot.sequence, [token]))
                needsLogits.append(true)
                runSlots.append(slot)
            } else if budget > 0 {
                let remaining = slot.job.prompt.count - slot.prefilled
                let n = min(budget, remaining)
                items.append((slot.sequence, Array(slot.job.prompt[slot.prefilled ..< slot.prefilled + n])))
                needsLogits.append(n == remaining)   // a chunk with more prompt to come draws nothing
                runSlots.append(slot)
                budget -= n
            }
        }
        guard !items.isEmpty else { return }
        if let profiler {
            let decoding = items.filter { $0.tokens.count == 1 }.count
            let prompt = items.reduce(0) { $0 + $1.tokens.count } - decoding
            _ = profiler.beginStep(key: "\(decoding) decode rows" + (prompt > 0 ? " + \(prompt) prompt rows" : ""))
            forward.stepTimes = BatchedStepTimes()
        }
        let outputs: [LoopOutputs]
        do {
            outputs = try forward.run(items, needsLogits: needsLogits)
        } catch {
            for slot in runSlots { slot.fail(APIError(status: 500, message: "\(error)", type: "server_error", code: "model_error")) }
            return
        }
        stepsRun += 1
        let drawStarted = profiler == nil ? 0 : DispatchTime.now().uptimeNanoseconds
        for (slot, out) in zip(runSlots, outputs) {
            if slot.pendingToken == nil {
                slot.prefilled += items.first { $0.sequence === slot.sequence }!.tokens.count
                if slot.prefilled < slot.job.prompt.count { continue }
            }
            draw(slot, out)
        }
        if let profiler, let times = forward.stepTimes { profiler.endStep(forward: times, drawStarted: drawStarted) }
    }

    private func draw(_ slot: Slot, _ out: LoopOutputs) {
        let logits = out.logits(slot.job.exit)
        let steps = out.steps
        switch slot.job.exit {
        case .lastStep: slot.summary.exitStepCounts[steps - 1] += 1
        case let .step(k): slot.summary.exitStepCounts[min(k, steps - 1)] += 1
        case let .threshold(q): slot.summary.exitStepCounts[out.exitSteps(threshold: q)[0]] += 1
        case .weighted: break
        }
        slot.expectedExitSum += out.exitPDF()[0].enumerated().reduce(0.0) { $0 + Double($1.offset + 1) * Double($1.element) }

        let token = slot.sampler.next(logits)
        if slot.firstToken == 0 { slot.firstToken = DispatchTime.now().uptimeNanoseconds }
        slot.summary.completionIDs.append(token)
        slot.pendingToken = token
        if let tokenizer, tokenizer.stopTokenIDs.contains(token) { return slot.finish("stop") }
        if var decoder = slot.decoder {
            let piece = decoder.push(token)
            slot.decoder = decoder
            slot.emit(slot.stopper.push(piece))
            if slot.stopper.stopped { return slot.finish("stop") }
        } else {
            slot.ticket.continuation.yield(.token(token))
        }
        if slot.summary.completionIDs.count >= slot.job.maxTokens { return slot.finish("length") }
    }
}

/// Holds back text that may be the start of a stop string, and cuts the output at the first stop
/// string found (the stop string itself is not sent, as OpenAI does).
struct StopStringFilter {
    let stops: [String]
    private var held = ""
    private(set) var stopped = false

    init(stops: [String]) { self.stops = stops }

    /// The text that can be sent now.
    mutating func push(_ piece: String) -> String {
        guard !stopped else { return "" }
        guard !stops.isEmpty else { return piece }
        held += piece
        if let cut = stops.compactMap({ held.range(of: $0)?.lowerBound }).min() {
            stopped = true
            let out = String(held[..<cut])
            held = ""
            return out
        }
        // Keep the longest tail that is a prefix of some stop string.
        var keep = 0
        for stop in stops {
            for k in stride(from: min(stop.count - 1, held.count), to: keep, by: -1) where stop.hasPrefix(held.suffix(k)) {
                keep = k
                break
            }
        }
        let out = String(held.dropLast(keep))
        held = String(held.suffix(keep))
        return out
    }

    /// What is held at the end (no stop string came).
    mutating func flush() -> String {
        defer { held = "" }
        return stopped ? "" : held
    }
}
