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

                loop: measures each matrix's sensitivity through the whole looped model (KLD of the last \
                loop step when only that matrix is quantized, on calibration tokens) for q3_k, iq4_xs, \
                q4_0 (searched scales), iq4_nl, q4_k, q5_k, q6_k and q8_0, then picks one type per matrix \
                under --bpw (from 3.4375 up).

                --imatrix weights each column's error by its mean squared activation on the calibration \
                tokens (llama.cpp's imatrix). Calibration: --calibration FILE (token ids), else tokens \
                sampled from the unquantized model (temperature 1, --seed, from bos).
                """)

        @Argument(help: "Checkpoint folder (config.json + *.safetensors).")
        var checkpoint: String

        @Option(name: .shortAndLong, help: "Where to write the GGUF file.")
        var output: String

        @Option(name: .shortAndLong, help: "Weight type or preset for the matrices: \(OutputType.allCases.map(\.rawValue).joined(separator: ", ")).")
        var type: OutputType = .q8_0

        @Option(help: "Bits-per-weight budget over the matrices for --type loop.")
        var bpw: Double = 4.5

        @Flag(help: "Importance-weighted quantization from calibration activations (imatrix).")
        var imatrix = false

        @Option(help: "Calibration token ids (comma/whitespace separated) for --type loop and --imatrix.")
        var calibration: String?

        @Option(help: "Self-sampled calibration: number of tokens (in sequences of 256).")
        var calibrationTokens: Int = 1024

        @Option(help: "Seed of the self-sampled calibration.")
        var seed: UInt64 = 0

        @Option(help: "Model name stored as general.name (default: the folder's name).")
        var name: String?

        @Flag(help: "Print the summary as JSON.")
        var json = false

        /// Test hook: stop after writing this many tensors (prints "paused" on stderr) until a signal
        /// arrives, so tests can interrupt a conversion at a known point.
        @Option(help: .private)
        var pauseAfterTensors: Int?

        func validate() throws {
            guard bpw > 0 && bpw.isFinite else { throw ValidationError("'--bpw' takes a positive number, e.g. 4.5") }
            guard calibrationTokens > 0 else { throw ValidationError("'--calibration-tokens' must be 1 or more") }
        }

        func run() throws {
            let converter = try reportingBadInput { try makeConverter() }
            if !json {
                for entry in converter.plan.entries where entry.note != nil {
                    print("note: \(entry.name): \(entry.note!)")
                }
            }
            let progress = ProgressLine(enabled: standardErrorIsTerminal)
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
                    output: summary.destination, type: type.rawValue, recipe: plan.recipe.name, tensors: plan.entries.count,
                    file_bytes: summary.fileBytes, bits_per_weight: plan.quantizedBitsPerWeight,
                    lossless: summary.lossless, seconds: summary.seconds,
                    fallbacks: plan.entries.compactMap { entry in entry.note.map { [entry.name, $0] } },
                    types: Dictionary(uniqueKeysWithValues: plan.entries.filter(\.quantizable).map { ($0.name, $0.targetType.name) }),
                    imatrix: converter.importance != nil)
                print(try jsonString(report))
            } else {
                if plan.recipe.name != type.rawValue || !plan.recipe.overrides.isEmpty {
                    let counts = Dictionary(grouping: plan.entries.filter(\.quantizable), by: \.targetType.name)
                        .map { "\($0.value.count) \($0.key)" }.sorted().joined(separator: ", ")
                    print("recipe \(plan.recipe.name): \(counts)" + (converter.importance != nil ? ", importance-weighted" : ""))
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
}

/// One self-overwriting progress line on stderr (only on a terminal).
final class ProgressLine {
    let enabled: Bool
    let started = Date()
    var lastDraw = Date.distantPast

    init(enabled: Bool) { self.enabled = enabled }

    func update(_ p: Converter.Progress) {
        guard enabled else { return }
        let now = Date()
        guard now.timeIntervalSince(lastDraw) > 0.1 || p.tensorIndex == p.tensorCount else { return }
        lastDraw = now
        let seconds = max(now.timeIntervalSince(started), 1e-3)
        let rate = Double(p.bytesWritten) / seconds / 1e6
        let line = String(format: "\r\u{1B}[Ktensor %d/%d  %@ of %@  %.0f MB/s  %@",
                          min(p.tensorIndex + 1, p.tensorCount), p.tensorCount, formatBytes(p.bytesWritten),
                          formatBytes(p.totalBytes), rate, p.tensorName)
        FileHandle.standardError.write(Data(line.utf8))
    }

    func finish() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}
