import ArgumentParser
import Foundation
import OuroValidation

/// `--criteria` names: the built-in pass criteria by file type.
enum CriteriaName: String, ExpressibleByArgument, CaseIterable {
    case lossless, q8_0, q6_k, q4, q4_0

    var criteria: PassCriteria {
        switch self {
        case .lossless: return .lossless
        case .q8_0: return .q8_0
        case .q6_k: return .q6_K
        case .q4: return .q4
        case .q4_0: return .q4_0
        }
    }
}

extension OuroCommand {
    struct Validate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a model's logits against reference logits, loop step by loop step.",
            discussion: """
                Runs every prompt of the reference bundle (written by Scripts/reference_logits.py from the \
                original PyTorch model; .safetensors or .safetensors.zst) and compares, for each loop step \
                and for the final logits: max |Δlogit|, relative RMS error, KL(reference ‖ model) mean / \
                p99 / max over positions and top-1 agreement; then the exit distribution, the threshold \
                exit steps, the exit-at-step and weighted logits, greedy tokens and perplexity.

                Pass criteria follow the file's type (see Formats/reference-bundle.md):
                  lossless  f32, and f16/bf16 holding the source exactly: every step
                            max|Δlogit| <= 1e-3, exit pdf <= 1e-4, threshold exit
                            steps and greedy tokens equal
                  q8_0      final KLD mean <= 1e-3, p99 <= 1e-2, top-1 >= 98%
                  q6_k      final KLD mean <= 2e-3, p99 <= 2e-2, top-1 >= 97%
                  q4        q4_k, iq4_nl, q4_k_m, q4_k_s, loop: final KLD mean
                            <= 1e-2, p99 <= 0.1, top-1 >= 93%
                  q4_0      final KLD mean <= 2e-2, p99 <= 0.2, top-1 >= 90%
                Override with --criteria and the --max-*/--min-* options.

                Exit codes: 0 the model passes, 1 it fails, 2 the input cannot be used.
                """)

        @Argument(help: "A .gguf file or a checkpoint folder.")
        var model: String

        @Option(name: .shortAndLong, help: "Reference bundle (.safetensors or .safetensors.zst).")
        var reference: String

        @Flag(help: "Print the report as JSON.")
        var json = false

        @Option(help: "Start from these criteria instead of the file type's: \(CriteriaName.allCases.map(\.rawValue).joined(separator: ", ")).")
        var criteria: CriteriaName?

        @Option(help: "Limit on every loop step's max |Δlogit|.")
        var maxLogitError: Double?

        @Option(help: "Limit on the exit distribution's max abs error.")
        var maxPdfError: Double?

        @Option(help: "Limit on the final logits' mean KL divergence.")
        var maxKldMean: Double?

        @Option(help: "Limit on the final logits' 99th-percentile KL divergence.")
        var maxKldP99: Double?

        @Option(help: "Minimum share of positions whose top-1 token agrees (0...1).")
        var minTop1: Double?

        @Flag(help: "Also run uncached greedy generation (one full forward per token) and compare it.")
        var uncachedGreedy = false

        func validate() throws {
            if let minTop1, !(0...1).contains(minTop1) { throw ValidationError("'--min-top1' takes a share between 0 and 1, e.g. 0.97") }
            for (flag, value) in [("--max-logit-error", maxLogitError), ("--max-pdf-error", maxPdfError),
                                  ("--max-kld-mean", maxKldMean), ("--max-kld-p99", maxKldP99)] {
                if let value, !(value >= 0) { throw ValidationError("'\(flag)' takes a limit of 0 or more") }
            }
        }

        func run() throws {
            let report = try reportingBadInput { () -> ValidationReport in
                let weights = try loadWeights(model)
                let bundle = try ReferenceBundle(path: reference)
                var validator = Validator(weights: weights, uncachedGreedy: uncachedGreedy)
                validator.criteria = chosenCriteria(default: validator.criteria)
                let showProgress = standardErrorIsTerminal && !json
                return try validator.validate(bundle: bundle) { line in
                    if showProgress { printError("  \(line)") }
                }
            }
            if json {
                print(String(decoding: try report.jsonData(), as: UTF8.self))
            } else {
                print(ReportText.render(report), terminator: "")
            }
            if !report.pass { throw ExitCode(1) }
        }

        private func chosenCriteria(default fileTypeCriteria: PassCriteria) -> PassCriteria {
            var c = criteria?.criteria ?? fileTypeCriteria
            let overridden = [maxLogitError, maxPdfError, maxKldMean, maxKldP99, minTop1].contains { $0 != nil }
            if let v = maxLogitError { c.maxAbsLogitError = v }
            if let v = maxPdfError { c.exitPDFMaxAbsError = v }
            if let v = maxKldMean { c.finalKLDMean = v }
            if let v = maxKldP99 { c.finalKLDP99 = v }
            if let v = minTop1 { c.finalTop1Min = v }
            if overridden { c.name += " (overridden)" }
            return c
        }
    }
}
