import ArgumentParser
import Foundation
import OuroConversion

extension OuroCommand {
    struct Convert: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Convert a Hugging Face Ouro checkpoint folder into one GGUF file.",
            discussion: """
                The folder holds config.json and model.safetensors, or shards listed in \
                model.safetensors.index.json (BF16, F16 or F32). The seven projection matrices of each \
                block, the token embeddings and the output head take --type; norms and the early-exit \
                gate stay F32. The file appears at --output only when it is complete.

                Types (bits per weight): f32 (32), f16 (16), bf16 (16), q8_0 (8.5), q6_k (6.5625), \
                q5_k (5.5), q4_0 (4.5), q4_k (4.5), iq4_nl (4.5), iq4_xs (4.25), q3_k (3.4375). Rows that \
                are not whole blocks fall back (q3_k, q4_k, iq4_xs -> iq4_nl; q5_k, q6_k -> q8_0; else \
                f16), with a note.

                Presets, as llama.cpp's: q4_k_m (Q4_K; Q6_K output and, in use_more_bits layers, attn_v \
                and ffn_down), q4_k_s (Q4_K; Q6_K output, Q5_K attn_v of the first 4 layers and ffn_down \
                of the first eighth), iq4_xs_mix (llama-quantize's IQ4_XS: IQ4_XS; Q6_K output, Q5_K \
                ffn_down of the first eighth without --imatrix, Q5_K attn_v when 4+ heads share a KV head).

                loop: starts from the uniform type nearest --bpw (q3_k, iq4_xs, q4_0, q4_k, iq4_nl, q5_k, \
                q6_k, q8_0; iq4_nl at 4.5, where nothing is measured; q4_k below 5.0), then moves tensors \
                off it on evidence measured through the whole looped model on calibration tokens (KLD per \
                loop step): cheaper per tensor until the file fits, or dearer per unit (token_embd, \
                output, a matrix role in every layer): first beyond 2 standard errors on the error that \
                grows over the loop steps (last step - first), then beyond 3 on the last step, never \
                raising the predicted growth (last step over first) above the base's.

                --bpw alone implies --type loop. A budget below what the candidate types can reach is an \
                error naming the lowest reachable bpw.

                --imatrix weights each column's error by its mean squared activation on the calibration \
                tokens (llama.cpp's imatrix). --gptq picks each block's codes column by column, feeding \
                the rounding error forward through the inverse of the input Hessian H = sum x x^T (all \
                positions, all loop steps); the blocks stay standard ggml blocks. --gptq is on by default \
                for --type loop (--no-gptq turns it off) and off for the other types, so --type q4_k is \
                ggml's reference quantizer exactly; --imatrix is off unless asked (with GPTQ it did not \
                help on the selection text). Calibration: --calibration FILE (token \
                ids), else tokens sampled from the unquantized model (temperature 1, --seed, from bos).
                """)

        @Argument(help: "Checkpoint folder (config.json + *.safetensors).")
        var checkpoint: String

        @Option(name: .shortAndLong, help: "Where to write the GGUF file.")
        var output: String

        @Option(name: .shortAndLong, help: "Weight type or preset for the matrices: \(OutputType.allCases.map(\.rawValue).joined(separator: ", ")) (default q8_0; loop when --bpw is given).")
        var type: OutputType?

        @Option(help: "Bits-per-weight budget over the matrices for the loop-aware search (implies --type loop; default 4.5).")
        var bpw: Double?

        @Flag(inversion: .prefixedNo, help: "Importance-weighted scales from calibration activations (imatrix). Default: off.")
        var imatrix: Bool?

        @Flag(inversion: .prefixedNo, help: "Error-compensating (GPTQ) rounding of the 3- to 6-bit blocks from calibration Hessians. Default: on for --type loop, off otherwise.")
        var gptq: Bool?

        @Option(help: "Calibration token ids (comma/whitespace separated) for --type loop, --imatrix and --gptq.")
        var calibration: String?

        @Option(help: "Self-sampled calibration: number of tokens, in sequences of 256 (default 1024).")
        var calibrationTokens: Int?

        @Option(help: "Seed of the self-sampled calibration (default 0).")
        var seed: UInt64?

        /// Relative damping of H for --gptq (measured on the selection set; see Docs/QUANTIZATION.md).
        @Option(help: .private)
        var gptqDamping: Double?

        @Option(help: "Model name stored as general.name (default: the folder's name).")
        var name: String?

        @Flag(help: "Print the summary as JSON.")
        var json = false

        /// Test hook: stop after writing this many tensors (prints "paused" on stderr) until a signal
        /// arrives, so tests can interrupt a conversion at a known point.
        @Option(help: .private)
        var pauseAfterTensors: Int?

        func validate() throws {
            if let bpw { guard bpw > 0 && bpw.isFinite else { throw ValidationError("'--bpw' takes a positive number, e.g. 4.5") } }
            if let calibrationTokens { guard calibrationTokens > 0 else { throw ValidationError("'--calibration-tokens' must be 1 or more") } }
        }

        func run() throws {
            try reportingBadInput { try checkOptionCombination() }
            if type == nil && bpw != nil { printError("note: --bpw implies --type loop") }
            let converter = try reportingBadInput { try makeConverter() }
            if !json {
                for entry in converter.plan.entries where entry.note != nil {
                    print("note: \(entry.name): \(entry.note!)")
                }
            }
            let progress = ProgressLine(terminal: standardErrorIsTerminal)
            let summary = try reportingBadInput {
                try converter.convert(to: output) { p in
                    progress.update(p)
                    if p.tensorIndex == pauseAfterTensors {
                        printError("paused after \(p.tensorIndex) tensors")
                        while true { sleep(60) }
                    }
                }
            }
            progress.finish()
            let plan = summary.plan
            if json {
                let report = ConvertReport(
                    output: summary.destination, type: outputType.rawValue, recipe: plan.recipe.name, tensors: plan.entries.count,
                    file_bytes: summary.fileBytes, bits_per_weight: plan.quantizedBitsPerWeight,
                    lossless: summary.lossless, seconds: summary.seconds,
                    fallbacks: plan.entries.compactMap { entry in entry.note.map { [entry.name, $0] } },
                    types: Dictionary(uniqueKeysWithValues: plan.entries.filter(\.quantizable).map { ($0.name, $0.targetType.name) }),
                    imatrix: converter.importance != nil, gptq: converter.hessians != nil)
                print(try jsonString(report))
            } else {
                if plan.recipe.name != outputType.rawValue || !plan.recipe.overrides.isEmpty {
                    let counts = Dictionary(grouping: plan.entries.filter(\.quantizable), by: \.targetType.name)
                        .map { "\($0.value.count) \($0.key)" }.sorted().joined(separator: ", ")
                    print("recipe \(plan.recipe.name): \(counts)" + (converter.importance != nil ? ", importance-weighted" : "") +
                          (converter.hessians != nil ? ", error-compensating rounding" : ""))
                }
                print("wrote \(summary.destination): \(plan.entries.count) tensors, \(formatBytes(summary.fileBytes)), " +
                      String(format: "%.2f bits per weight over the matrices, %.2f s", plan.quantizedBitsPerWeight, summary.seconds) +
                      (summary.lossless ? ", lossless" : ""))
            }
        }
    }
}

private struct ConvertReport: Encodable {
    let output: String
    let type: String
    let recipe: String
    let tensors: Int
    let file_bytes: Int
    let bits_per_weight: Double
    let lossless: Bool
    let seconds: Double
    let fallbacks: [[String]]
    let types: [String: String]
    let imatrix: Bool
    let gptq: Bool
}

/// Writing progress on stderr: one self-overwriting line on a terminal; elsewhere (logs, pipes) a
/// plain line at most every 10 s with the share done and an ETA, so a long conversion is never silent.
final class ProgressLine {
    let terminal: Bool
    let started = Date()
    var lastDraw = Date.distantPast
    var lastLine = Date()

    init(terminal: Bool) { self.terminal = terminal }

    func update(_ p: Converter.Progress) {
        let now = Date()
        let seconds = max(now.timeIntervalSince(started), 1e-3)
        guard terminal else {
            guard now.timeIntervalSince(lastLine) >= 10, p.bytesWritten > 0, p.tensorIndex < p.tensorCount else { return }
            lastLine = now
            let share = Double(p.bytesWritten) / Double(max(p.totalBytes, 1))
            printError(String(format: "writing: tensor %d/%d, %.0f%% of %@, %.0f s, ETA %.0f s", p.tensorIndex + 1, p.tensorCount,
                              100 * share, formatBytes(p.totalBytes), seconds, seconds * (1 - share) / max(share, 1e-9)))
            return
        }
        guard now.timeIntervalSince(lastDraw) > 0.1 || p.tensorIndex == p.tensorCount else { return }
        lastDraw = now
        let rate = Double(p.bytesWritten) / seconds / 1e6
        let line = String(format: "\r\u{1B}[Ktensor %d/%d  %@ of %@  %.0f MB/s  %@",
                          min(p.tensorIndex + 1, p.tensorCount), p.tensorCount, formatBytes(p.bytesWritten),
                          formatBytes(p.totalBytes), rate, p.tensorName)
        FileHandle.standardError.write(Data(line.utf8))
    }

    func finish() {
        guard terminal else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}
