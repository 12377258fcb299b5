import ArgumentParser
import Foundation
import OuroModel

extension OuroCommand {
    struct Compare: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Score a model against an unquantized one on token sequences (KLD by loop step, top-1, perplexity).",
            discussion: """
                Runs both models on every sequence of --tokens (one sequence per non-empty line, ids \
                separated by commas or spaces; each line is its own context) and reports, per loop step, \
                the mean KL(reference || model) over positions with its standard error and the 99th \
                percentile; for the final step the share of positions whose top-1 token agrees (with \
                standard error) and the perplexity ratio on the next tokens; and the growth of the mean \
                KLD from the first loop step to the last. The reference is usually the f32 checkpoint \
                folder: our f32 forward pass is within 2.4e-5 of PyTorch's logits, so no PyTorch is needed.
                Standard errors treat positions as independent (neighbouring positions are correlated, \
                so they are a lower bound).
                """)

        @Argument(help: "The model to score: a .gguf file or a checkpoint folder.")
        var model: String

        @Option(name: .shortAndLong, help: "The reference model (a checkpoint folder or .gguf), run in its stored precision.")
        var reference: String

        @Option(help: "Token sequences, one per line.")
        var tokens: String

        @Flag(help: "Print JSON.")
        var json = false

        func run() throws {
            let (sequences, referenceWeights, weights) = try reportingBadInput { () -> ([[Int]], OuroWeights, OuroWeights) in
                guard let data = FileManager.default.contents(atPath: tokens) else {
                    throw OptionConflict(description: "\(tokens): cannot read the token file")
                }
                var sequences: [[Int]] = []
                for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
                    let fields = line.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" })
                    guard !fields.isEmpty else { continue }
                    let ids = fields.compactMap { Int($0) }
                    guard ids.count == fields.count else { throw OptionConflict(description: "\(tokens): a line holds something other than token ids") }
                    sequences.append(ids)
                }
                guard !sequences.isEmpty else { throw OptionConflict(description: "\(tokens): no sequences") }
                return (sequences, try loadWeights(reference), try loadWeights(model))
            }
            let referenceRunner = OuroRunner(weights: referenceWeights), runner = OuroRunner(weights: weights)
            var kld: [[Double]] = []   // [step][position]
            var agree: [Double] = [], nllReference = 0.0, nllModel = 0.0, labels = 0
            try reportingBadInput {
                for sequence in sequences {
                    let ref = try referenceRunner.forward(tokens: sequence), out = try runner.forward(tokens: sequence)
                    let v = out.vocab
                    if kld.isEmpty { kld = Array(repeating: [], count: out.steps) }
                    for s in 0..<out.steps {
                        for t in 0..<out.tokens {
                            let p = logSoftmax(ref.stepLogits[s][t * v..<(t + 1) * v]), q = logSoftmax(out.stepLogits[s][t * v..<(t + 1) * v])
                            var total = 0.0
                            for i in 0..<v { total += exp(p[i]) * (p[i] - q[i]) }
                            kld[s].append(max(total, 0))
                            guard s == out.steps - 1 else { continue }
                            agree.append(argmax(p) == argmax(q) ? 1 : 0)
                            if t + 1 < out.tokens {
                                nllReference -= p[sequence[t + 1]]
                                nllModel -= q[sequence[t + 1]]
                                labels += 1
                            }
                        }
                    }
                }
            }
            let steps = kld.map { values -> CompareReport.Step in
                let (mean, stderr) = meanAndStandardError(values)
                let sorted = values.sorted()
                return .init(kld_mean: mean, kld_stderr: stderr, kld_p99: sorted[min(sorted.count - 1, Int(0.99 * Double(sorted.count)))])
            }
            let (top1, top1Stderr) = meanAndStandardError(agree)
            let report = CompareReport(positions: agree.count, sequences: sequences.count, steps: steps, top1: top1, top1_stderr: top1Stderr,
                                       ppl_ratio: labels == 0 ? 1 : exp((nllModel - nllReference) / Double(labels)),
                                       growth: steps.last!.kld_mean / max(steps.first!.kld_mean, 1e-300))
            if json {
                print(try jsonString(report))
            } else {
                print("\(report.positions) positions in \(report.sequences) sequences")
                for (s, step) in steps.enumerated() {
                    print(String(format: "step %d: KLD mean %.3e ± %.1e, p99 %.3e", s + 1, step.kld_mean, step.kld_stderr, step.kld_p99))
                }
                print(String(format: "final top-1 %.2f%% ± %.2f%%, perplexity ratio %.4f, growth step 1 -> %d %.2fx",
                             100 * top1, 100 * top1Stderr, report.ppl_ratio, steps.count, report.growth))
            }
        }
    }
}

private struct CompareReport: Encodable {
    struct Step: Encodable { let kld_mean: Double; let kld_stderr: Double; let kld_p99: Double }
    let positions: Int
    let sequences: Int
    let steps: [Step]
    let top1: Double
    let top1_stderr: Double
    let ppl_ratio: Double
    let growth: Double
}

private func logSoftmax(_ row: ArraySlice<Float>) -> [Double] {
    let top = Double(row.max() ?? 0)
    let sum = row.reduce(0.0) { $0 + exp(Double($1) - top) }
    let shift = top + log(sum)
    return row.map { Double($0) - shift }
}

private func argmax(_ values: [Double]) -> Int {
    var best = 0
    for i in values.indices where values[i] > values[best] { best = i }
    return best
}

private func meanAndStandardError(_ values: [Double]) -> (Double, Double) {
    let n = Double(values.count)
    guard n > 1 else { return (values.first ?? 0, 0) }
    let mean = values.reduce(0, +) / n
    let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (n - 1)
    return (mean, (variance / n).squareRoot())
}
