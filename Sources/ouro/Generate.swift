import ArgumentParser
import Foundation
import OuroModel

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
            abstract: "Generate tokens from token ids (greedy, or sampled with --temperature).",
            discussion: """
                Runs the looped model on the prompt and appends --max-new tokens, each the most likely \
                next token. The exit mode picks which loop step's logits decide:
                  last          the last loop step
                  step:K        loop step K (1-based)
                  threshold:Q   per token, the first step whose cumulative exit probability reaches Q
                  weighted      the exit-probability-weighted mix of every step's logits
                Default: as the original model does (config early_exit_threshold, else last step).
                """)

        @Argument(help: "A .gguf file or a checkpoint folder.")
        var model: String

        @Option(help: "Prompt token ids, comma-separated (e.g. 5,17,3).")
        var tokens: String

        @Option(help: "How many tokens to generate.")
        var maxNew: Int = 12

        @Option(help: "Exit mode: last, step:K, threshold:Q or weighted.")
        var exit: ExitArgument?

        @Option(help: "Sampling temperature; 0 (default) is greedy.")
        var temperature: Float = 0

        @Option(help: "Seed for sampling (with --temperature; default 0).")
        var seed: UInt64?

        @Flag(help: "Recompute the whole sequence for every token instead of using the KV cache.")
        var noCache = false

        @Flag(help: "Print JSON.")
        var json = false

        func validate() throws {
            guard maxNew >= 0 else { throw ValidationError("'--max-new' must be 0 or more") }
            guard temperature >= 0 && temperature.isFinite else { throw ValidationError("'--temperature' must be 0 or more") }
            if temperature > 0 && noCache { throw ValidationError("'--temperature' works with the KV cache only; drop '--no-cache'") }
            guard !tokens.isEmpty, tokens.split(separator: ",").allSatisfy({ Int($0.trimmingCharacters(in: .whitespaces)) != nil }) else {
                throw ValidationError("'--tokens' takes comma-separated integers, e.g. --tokens 5,17,3")
            }
        }

        func run() throws {
            if seed != nil && temperature == 0 {
                try reportingBadInput { throw OptionConflict(description: "'--seed' applies to sampling; add '--temperature' (greedy decoding has no randomness)") }
            }
            let prompt = tokens.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            let started = Date()
            let generated = try reportingBadInput { () -> [Int] in
                let weights = try loadWeights(model)
                let runner = OuroRunner(weights: weights)
                let mode = exit?.mode ?? runner.defaultExitMode
                if temperature > 0 {
                    return try runner.sample(prompt: prompt, maxNewTokens: maxNew,
                                             sampler: Sampler(temperature: temperature, seed: seed ?? 0), exit: mode)
                }
                return try runner.generate(prompt: prompt, maxNewTokens: maxNew, cached: !noCache, exit: mode)
            }
            let seconds = Date().timeIntervalSince(started)
            if json {
                struct Output: Encodable { let prompt: [Int]; let generated: [Int]; let seconds: Double }
                print(try jsonString(Output(prompt: prompt, generated: generated, seconds: seconds)))
            } else {
                print(generated.map(String.init).joined(separator: ","))
            }
        }
    }
}
