import ArgumentParser
import Foundation
import OuroIO
import OuroModel
import Quantization

extension OuroCommand {
    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure prefill and decode speed against this machine's own baselines.",
            discussion: """
                Loads the model, reads every matrix once (warm-up, so the file is resident), measures \
                read bandwidth over those same bytes and OpenBLAS sgemm on the prefill shape, then \
                runs one greedy generation: --prompt tokens at once, then --generate tokens one by one. \
                Decode reads every block matrix once per loop step and the output head once (last-step \
                logits; the exit gate of the other steps is one dot product) for every token, so its \
                ceiling is bandwidth / bytes per token; prefill is compute-bound and compared with sgemm.

                --kv-type and --kv-share choose the KV cache; the report gives its bytes per position \
                (kv_bytes_per_token) and the process's peak resident memory. --also-prompt N times a \
                second generation after an N-token prompt in the same process (interleaved with the \
                first, best of --repeats each) and reports the decode speed ratio, so a long context's \
                decode cost can be stated against a short one's on a busy machine. Decode speed is \
                also given per CPU second of the process (decode_tokens_per_cpu_s): with --threads 1 \
                that is the decode's own compute, which a loaded machine's time-slicing does not stretch; \
                prefill likewise (prefill_tokens_per_cpu_s, the best of --repeats).
                """)

        @Argument(help: "A .gguf file or a checkpoint folder.")
        var model: String

        @Option(help: "Prompt tokens (up to the context limit), processed in chunks of 256.")
        var prompt: Int = 64

        @Option(help: "Also time decode after a prompt of this many tokens, in the same run (e.g. 64 against --prompt 4096).")
        var alsoPrompt: Int?

        @Option(help: "Decode at a context of this many positions: after the prompt, the cache is filled by repeating the prompt's K/V (untimed), so decode reads what an N-token context holds without an N-token prefill.")
        var fillContext: Int?

        @OptionGroup var kv: KVCacheArguments

        @OptionGroup var context: ContextLimitArgument

        @Option(help: "Tokens generated (the first comes from the prefill pass).")
        var generate: Int = 16

        @Option(help: "Threads (default: number of online CPUs).")
        var threads: Int?

        @Option(help: "Runs; the best of them is reported.")
        var repeats: Int = 1

        @Option(help: "Integer kernel level: best, or one this CPU has: scalar, avx2, vnni (AVX-512 without the prefill GEMM), avx512; neon, dotprod, i8mm on aarch64 (default: OURO_KERNELS, else best).")
        var kernel: String?

        @Flag(help: "Prefill through dequantized f32 tiles and sgemm instead of the integer kernels.")
        var floatPrefill = false

        @Option(help: "Exit mode of the decode: last (one output-head product per token) or weighted (one per loop step).")
        var exit: String = "last"

        @Option(help: "Also time self-speculative decoding's parts with K drafted tokens: a full-depth token, a draft token, a K+1-token verification pass.")
        var speculate: Int?

        @Option(help: "Loop steps of a draft token with --speculate.")
        var draftSteps: Int = 1

        @Option(help: "With --speculate: the draft acceptance rate (e.g. measured on a trained model) for the modeled speed-up.")
        var acceptance: Double?

        @Option(help: ArgumentHelp("Where the weights live: huge-pages (a private copy in 2 MiB pages, Linux only) or mapped (the file's page-cache pages). Default: OURO_WEIGHTS, else huge-pages when the file takes at most half of the available memory.",
                                   discussion: "A mapping is as fast only when the kernel cached the file in large folios; a file evicted and read back in 4 KiB pages decodes ~25% slower."))
        var weights: String?

        @Flag(help: "Print JSON.")
        var json = false

        func validate() throws {
            guard prompt >= 1 else { throw ValidationError("'--prompt' must be 1 or more") }
            if let alsoPrompt, alsoPrompt < 1 { throw ValidationError("'--also-prompt' must be 1 or more") }
            if let fillContext, fillContext <= prompt { throw ValidationError("'--fill-context' must be more than '--prompt'") }
            guard generate >= 2 else { throw ValidationError("'--generate' must be 2 or more (one decode step at least)") }
            guard (threads ?? 1) >= 1 else { throw ValidationError("'--threads' must be 1 or more") }
            guard repeats >= 1 else { throw ValidationError("'--repeats' must be 1 or more") }
            if let kernel, kernel != "best" {
                let levels = MachineProbe.availableKernelLevels
                guard levels.contains(kernel) || kernel == "c" else {
                    throw ValidationError("'--kernel' is best or one of this CPU's levels: \(levels.joined(separator: ", "))")
                }
            }
            guard ["last", "weighted"].contains(exit) else { throw ValidationError("'--exit' is last or weighted") }
            guard ["huge-pages", "mapped"].contains(weights ?? "mapped") else { throw ValidationError("'--weights' is huge-pages or mapped") }
            guard (speculate ?? 1) >= 1 else { throw ValidationError("'--speculate' must be 1 or more") }
            if speculate == nil && (draftSteps != 1 || acceptance != nil) {
                throw ValidationError("'--draft-steps' and '--acceptance' apply to '--speculate K' only")
            }
            guard (0...1).contains(acceptance ?? 0) else { throw ValidationError("'--acceptance' is a rate in 0...1") }
        }

        func run() throws {
            let level = kernel.map { MachineProbe.setKernelLevel($0) } ?? MachineProbe.kernelLevel
            var residency = weights.map { $0 == "mapped" ? MappedFile.Residency.mapped : .hugePages } ?? residencyFromEnvironment() ?? defaultResidency(for: model)
            #if !os(Linux)
            residency = .mapped      // no transparent huge pages: MappedFile maps the file
            #endif
            let residencyName = residency == .mapped ? "mapped" : "huge-pages"
            let loadStarted = Date()
            let (weights, runner) = try reportingBadInput { () -> (OuroWeights, OuroRunner) in
                let weights = try loadWeights(model, residency: residency)
                return (weights, OuroRunner(weights: weights, threads: threads, integerPrefill: !floatPrefill))
            }
            let loadSeconds = Date().timeIntervalSince(loadStarted)
            let n = runner.threads
            MachineProbe.setBLASThreads(n)
            let config = weights.config

            // Warm-up pass pages the weights in; the measured passes then see what decode sees.
            _ = MachineProbe.readBandwidth(weights.matrixRegions, threads: n, passes: 1)
            let bandwidth = MachineProbe.readBandwidth(weights.matrixRegions, threads: n, passes: 3)
            let sgemm = MachineProbe.sgemmGFLOPS(m: prompt, n: config.intermediateSize, k: config.hiddenSize, threads: n)

            // The runner's own pool splits the big products; OpenBLAS only sees the small attention
            // products, where its threads would spin against ours.
            MachineProbe.setBLASThreads(1)
            let kvOptions = kv.options(contextLimit: context.contextLimit)
            let exitMode: ExitMode = exit == "weighted" ? .weighted : .lastStep
            func tokens(_ count: Int) -> [Int] { (0..<count).map { (1 + $0 * 7919) % config.vocabSize } }
            func better(_ a: GenerationTiming?, _ b: GenerationTiming) -> GenerationTiming {
                guard let a else { return b }
                return b.decodeSeconds + b.prefillSeconds < a.decodeSeconds + a.prefillSeconds ? b : a
            }
            var best: GenerationTiming?, bestAlso: GenerationTiming?
            var prefillPerCPUSecond = 0.0
            for _ in 0..<repeats {
                let run = try reportingBadInput {
                    try runner.timedGeneration(prompt: tokens(prompt), newTokens: generate, exit: exitMode, kv: kvOptions, fillContext: fillContext)
                }
                best = better(best, run)
                prefillPerCPUSecond = max(prefillPerCPUSecond, run.prefillTokensPerCPUSecond)
                if let alsoPrompt {
                    bestAlso = better(bestAlso, try reportingBadInput {
                        try runner.timedGeneration(prompt: tokens(alsoPrompt), newTokens: generate, exit: exitMode, kv: kvOptions)
                    })
                }
            }
            let timing = best!
            let speculation = try speculate.map { k in
                try reportingBadInput {
                    try runner.timedSpeculationParts(prompt: tokens(prompt), draftTokens: k, draftSteps: draftSteps, rounds: max(2, repeats),
                                                     kv: kvOptions)
                }
            }
            let bytesPerToken = weights.matrixBytesPerToken(loopSteps: config.loopCount, headReads: exitMode == .weighted ? config.loopCount : 1)
            let limit = bandwidth / Double(bytesPerToken)
            // Prefill computes logits for the last position only, at the last step: the head runs once.
            let headFlops = 2 * weights.output.rows * weights.output.columns
            let prefillFlops = Double(weights.matrixFlopsPerToken - headFlops) * Double(prompt) + Double(headFlops)
            let prefillGFLOPS = prefillFlops / timing.prefillSeconds / 1e9

            let report = BenchReport(
                model: model, type: weights.fileType?.name ?? "mixed", threads: n, kernel: level,
                prefill_path: floatPrefill || LinearKernelsPath.isFloat(weights) ? "f32 tiles + sgemm" : "integer",
                exit: exit, weights: residencyName, prompt_tokens: prompt, generated_tokens: generate, load_ms: loadSeconds * 1000,
                prefill_tokens_per_s: timing.prefillTokensPerSecond, decode_tokens_per_s: timing.decodeTokensPerSecond,
                bytes_per_token: bytesPerToken, read_bandwidth_gb_per_s: bandwidth / 1e9,
                decode_limit_tokens_per_s: limit, decode_fraction_of_limit: timing.decodeTokensPerSecond / limit,
                decode_gb_per_s: timing.decodeTokensPerSecond * Double(bytesPerToken) / 1e9,
                prefill_gflops: prefillGFLOPS, sgemm_gflops: sgemm, prefill_fraction_of_sgemm: prefillGFLOPS / sgemm,
                generated: timing.generated,
                kv_type: kvOptions.type.rawValue, kv_share: kvOptions.sharing.rawValue,
                kv_bytes_per_token: kvOptions.bytesPerPosition(for: config),
                decode_context_positions: fillContext ?? prompt,
                kv_bytes_at_context: kvOptions.bytesPerPosition(for: config) * ((fillContext ?? prompt) + generate),
                peak_rss_bytes: MachineProbe.peakResidentBytes(),
                also_prompt_tokens: alsoPrompt, also_decode_tokens_per_s: bestAlso?.decodeTokensPerSecond,
                decode_ratio_to_also: bestAlso.map { timing.decodeTokensPerSecond / $0.decodeTokensPerSecond },
                decode_tokens_per_cpu_s: timing.decodeTokensPerCPUSecond,
                prefill_tokens_per_cpu_s: prefillPerCPUSecond,
                also_decode_tokens_per_cpu_s: bestAlso?.decodeTokensPerCPUSecond,
                decode_cpu_ratio_to_also: bestAlso.map { timing.decodeTokensPerCPUSecond / $0.decodeTokensPerCPUSecond },
                speculation: speculation.map { s in
                    SpeculationReport(draft_tokens: s.draftTokens, draft_steps: s.draftSteps, plain_token_ms: s.plainTokenSeconds * 1000,
                                      draft_token_ms: s.draftTokenSeconds * 1000, verify_pass_ms: s.verifySeconds * 1000,
                                      acceptance: acceptance, modeled_speedup: acceptance.map { s.modeledSpeedup(acceptance: $0) })
                })
            if json {
                print(try jsonString(report))
            } else {
                print(String(format: "%@ %@, %d thread(s), kernels %@, weights %@, load %.1f ms", model, report.type, n, level, report.weights, report.load_ms))
                print(String(format: "prefill %d tokens: %.2f tok/s = %.1f GFLOP/s (%.0f%% of sgemm %.1f GFLOP/s), %@",
                             prompt, report.prefill_tokens_per_s, prefillGFLOPS, 100 * report.prefill_fraction_of_sgemm, sgemm,
                             report.prefill_path))
                print(String(format: "decode %d tokens: %.2f tok/s, %@ per token = %.1f GB/s (%.0f%% of read bandwidth %.1f GB/s, limit %.2f tok/s)",
                             generate - 1, report.decode_tokens_per_s, formatBytes(bytesPerToken), report.decode_gb_per_s,
                             100 * report.decode_fraction_of_limit, bandwidth / 1e9, limit))
                print("KV cache \(report.kv_type), \(report.kv_share) sharing: \(formatBytes(report.kv_bytes_per_token)) per position, "
                      + "\(formatBytes(report.kv_bytes_at_context)) at \(report.decode_context_positions + generate) positions; peak RSS \(formatBytes(report.peak_rss_bytes))")
                if let also = bestAlso, let ratio = report.decode_ratio_to_also {
                    print(String(format: "decode at a %d-position context: %.2f tok/s; after a %d-token prompt: %.2f tok/s (ratio %.3f, same run; per CPU second %.3f)",
                                 report.decode_context_positions, report.decode_tokens_per_s, alsoPrompt!, also.decodeTokensPerSecond, ratio,
                                 report.decode_cpu_ratio_to_also!))
                }
                if let s = report.speculation {
                    print(String(format: "speculation K=%d D=%d: full-depth token %.1f ms, draft token %.1f ms, verification of %d tokens %.1f ms",
                                 s.draft_tokens, s.draft_steps, s.plain_token_ms, s.draft_token_ms, s.draft_tokens + 1, s.verify_pass_ms)
                          + (s.modeled_speedup.map { String(format: "; modeled speed-up at acceptance %.3f: %.2fx", s.acceptance!, $0) } ?? ""))
                }
            }
        }
    }
}

/// Which prefill path the weights take regardless of the flag: the integer one only when every block
/// projection has an integer kernel (float files have none; mixes such as q4_k_m are checked per tensor).
enum LinearKernelsPath {
    static func isFloat(_ weights: OuroWeights) -> Bool {
        let integerTypes: Set<GGMLType> = [.q8_0, .q4_0, .iq4_nl, .q3_K, .q4_K, .q5_K, .q6_K, .iq4_xs]
        let projections = weights.layers.flatMap { [$0.q, $0.k, $0.v, $0.o, $0.gate, $0.up, $0.down] }
        return !projections.allSatisfy { integerTypes.contains($0.type) }
    }
}

struct BenchReport: Encodable {
    let model: String
    let type: String
    let threads: Int
    let kernel: String
    let prefill_path: String
    let exit: String
    /// Where the weights were held: huge-pages or mapped (always mapped off Linux).
    let weights: String
    let prompt_tokens: Int
    let generated_tokens: Int
    let load_ms: Double
    let prefill_tokens_per_s: Double
    let decode_tokens_per_s: Double
    let bytes_per_token: Int
    let read_bandwidth_gb_per_s: Double
    let decode_limit_tokens_per_s: Double
    let decode_fraction_of_limit: Double
    let decode_gb_per_s: Double
    let prefill_gflops: Double
    let sgemm_gflops: Double
    let prefill_fraction_of_sgemm: Double
    let generated: [Int]
    let kv_type: String
    let kv_share: String
    /// KV cache bytes one position keeps.
    let kv_bytes_per_token: Int
    /// Positions in the cache when decoding starts: the prompt, or --fill-context.
    let decode_context_positions: Int
    /// kv_bytes_per_token x (decode_context_positions + generated) positions.
    let kv_bytes_at_context: Int
    let peak_rss_bytes: Int
    let also_prompt_tokens: Int?
    let also_decode_tokens_per_s: Double?
    /// decode_tokens_per_s / also_decode_tokens_per_s.
    let decode_ratio_to_also: Double?
    /// Decoded tokens per CPU second of the process (with one thread: per second of the decode's own
    /// compute; a loaded machine's time-slicing stretches wall time, not this).
    let decode_tokens_per_cpu_s: Double
    /// Prompt tokens per CPU second of the process during the prompt pass, best of the repeats.
    let prefill_tokens_per_cpu_s: Double
    let also_decode_tokens_per_cpu_s: Double?
    /// decode_tokens_per_cpu_s / also_decode_tokens_per_cpu_s.
    let decode_cpu_ratio_to_also: Double?
    let speculation: SpeculationReport?
}

struct SpeculationReport: Encodable {
    let draft_tokens: Int
    let draft_steps: Int
    let plain_token_ms: Double
    let draft_token_ms: Double
    let verify_pass_ms: Double
    let acceptance: Double?
    let modeled_speedup: Double?
}
