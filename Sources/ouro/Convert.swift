import ArgumentParser
import Foundation
import OuroConversion

extension OuroCommand {
    struct Convert: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Convert a Hugging Face Ouro checkpoint folder into one GGUF file.",
            discussion: """
                The folder holds config.json and model.safetensors, or shards listed in
                model.safetensors.index.json (BF16, F16 or F32). The seven projection matrices of each
                block, the token embeddings and the output head take --type; norms and the early-exit
                gate stay F32. The file appears at --output only when it is complete.

                Types (bits per weight): f32 (32), f16 (16), bf16 (16), q8_0 (8.5), q4_0 (4.5).
                """)

        @Argument(help: "Checkpoint folder (config.json + *.safetensors).")
        var checkpoint: String

        @Option(name: .shortAndLong, help: "Where to write the GGUF file.")
        var output: String

        @Option(name: .shortAndLong, help: "Weight type for the matrices: \(OutputType.allCases.map(\.rawValue).joined(separator: ", ")).")
        var type: OutputType = .q8_0

        @Option(help: "Model name stored as general.name (default: the folder's name).")
        var name: String?

        @Flag(help: "Print the summary as JSON.")
        var json = false

        /// Test hook: stop after writing this many tensors (prints "paused" on stderr) until a signal
        /// arrives, so tests can interrupt a conversion at a known point.
        @Option(help: .private)
        var pauseAfterTensors: Int?

        func run() throws {
            let converter = try reportingBadInput { try Converter(checkpoint: checkpoint, type: type.ggmlType, name: name) }
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
                    output: summary.destination, type: type.rawValue, tensors: plan.entries.count,
                    file_bytes: summary.fileBytes, bits_per_weight: plan.quantizedBitsPerWeight,
                    lossless: summary.lossless, seconds: summary.seconds,
                    fallbacks: plan.entries.compactMap { entry in entry.note.map { [entry.name, $0] } })
                print(try jsonString(report))
            } else {
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
    let tensors: Int
    let file_bytes: Int
    let bits_per_weight: Double
    let lossless: Bool
    let seconds: Double
    let fallbacks: [[String]]
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
