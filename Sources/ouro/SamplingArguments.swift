import Foundation
import ArgumentParser
import OuroModel

/// How `generate` and `chat` pick tokens: greedy by default, sampled with --temperature.
struct SamplingArguments: ParsableArguments {
    @Option(help: "Sampling temperature; 0 (default) is greedy: always the most likely token.")
    var temperature: Float = 0

    @Option(help: "Sample only among the K most likely tokens (with --temperature); 0 is off.")
    var topK: Int = 0

    @Option(help: "Sample only among the most likely tokens that together reach probability P (with --temperature).")
    var topP: Float = 1

    @Option(help: "Drop tokens less likely than P x the most likely one (with --temperature); 0 is off.")
    var minP: Float = 0

    @Option(help: "Divide the logits of tokens already in the context by this (greedy or sampled); 1 is off.")
    var repeatPenalty: Float = 1

    @Option(help: "Seed of the draw (with --temperature): the same seed gives the same text.")
    var seed: UInt64?

    var options: SamplingOptions {
        SamplingOptions(temperature: temperature, topK: topK, topP: topP, minP: minP, repeatPenalty: repeatPenalty, seed: seed ?? 0)
    }

    /// True when decoding is plain greedy (what `--no-cache` and `generate` without a sampler support).
    var isPlainGreedy: Bool { temperature == 0 && repeatPenalty == 1 }

    func validate() throws {
        if let problem = options.problem { throw ValidationError("'--" + problem.replacingOccurrences(of: " must", with: "' must")) }
        if temperature == 0 {
            // These only shape a draw; greedy decoding has none, so refuse rather than ignore them.
            for (flag, set) in [("--top-k", topK != 0), ("--top-p", topP != 1), ("--min-p", minP != 0), ("--seed", seed != nil)] where set {
                throw ValidationError("'\(flag)' applies to sampling; add '--temperature' (e.g. 0.7)")
            }
        }
    }
}
