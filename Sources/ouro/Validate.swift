import ArgumentParser
import Foundation
import OuroIO
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
                exit steps, the exit-at-step and weighted logits, greedy tokens and perplexity. KLD is \
                also given as llama-perplexity prints it: mean ± standard error, median, p90, p95, p99, \
                p99.9, max, and top-1 ± standard error; then the growth of the mean KLD from the first \
                loop step to the last. Standard errors treat positions as independent (neighbouring \
                positions are correlated, so they are a lower bound).

                The reference is a bundle (--reference; `ouro reference` writes one from a lossless \
                model without PyTorch) or a lossless model run on the fly (--baseline with --text-file, \
                --prompts or --tokens): one window at a time, so memory does not grow with the text. \
                Our f32 forward pass is within 2.4e-5 of PyTorch's logits, so the f32 or bf16 checkpoint \
                folder is a faithful baseline. With \
                several models, each is validated in turn (a --baseline is re-run for each) and one \
                comparison table is printed; --json then prints {"models": [one report per file]}. \
                --html writes a self-contained page with the charts.

                Examples:
                  ouro validate q4_0.gguf q8_0.gguf --reference ref.safetensors.zst --html report.html
                  ouro validate q4_0.gguf --baseline ./Ouro-1.4B --text-file wiki.txt --ctx 512 --chunks 64
                  ouro validate loop.gguf q4_k.gguf --baseline ./ouro-trained-s --tokens heldout.txt --json

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

                --decode-path checks generation's path position by position: each prompt's first \
                --decode-prefill tokens at once, then every later token alone through the KV cache \
                (--kv-type, --kv-share; also used by the greedy check). With an f32 cache and full sharing \
                it is held to every criterion; with f16/q8_0 or shared K/V to the KLD and top-1 limits only.

                --early-exit threshold:Q (with --decode-path) runs the decode path a second time with real \
                early exit, as `generate --exit threshold:Q` decodes: each one-at-a-time position stops \
                looping at the first step whose cumulative exit probability reaches Q, and the deeper \
                steps' K/V are that step's. It reports the mean loop steps per position and the KLD and \
                top-1 agreement of the early-exit logits against full depth (the final logits above) and \
                against the same threshold with every step computed (which isolates the copied K/V). \
                Informational: it does not change the verdict. Q = 0 stops after the first step.

                Exit codes: 0 the model passes, 1 it fails, 2 the input cannot be used.
                """)

        @Argument(help: "One or more .gguf files or checkpoint folders; several are compared in one table.")
        var models: [String]

        @Option(name: .shortAndLong, help: "Reference bundle (.safetensors or .safetensors.zst).")
        var reference: String?

        @Option(help: "Compute the reference on the fly from this lossless model (checkpoint folder or f32/bf16/f16 GGUF) instead of a bundle; needs --text-file or --prompts.")
        var baseline: String?

        @Option(help: "With --baseline: JSON array of prompts (strings or arrays of token ids).")
        var prompts: String?

        @Option(help: "With --baseline: token sequences, one per line (ids separated by commas or spaces); each line is its own context.")
        var tokens: String?

        @OptionGroup var text: TextWindowOptions

        @Flag(help: "With --baseline: accept a lossy baseline.")
        var allowLossy = false

        @Option(help: "Also write a self-contained HTML report (charts as inline SVG) to this file.")
        var html: String?

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

        @Flag(help: "Also feed each prompt one token at a time through the KV cache (after --decode-prefill tokens) and compare every position and loop step (JSON: decode_path).")
        var decodePath = false

        @Option(help: "With --decode-path: tokens of each prompt run at once before the one-at-a-time positions.")
        var decodePrefill: Int = 8

        @Option(help: ArgumentHelp("With --decode-path: also decode with real early exit at this threshold (threshold:Q, 0 <= Q <= 1) and compare with full depth (JSON: decode_path.early_exit).",
                                   valueName: "threshold:Q"))
        var earlyExit: EarlyExitArgument?

        @OptionGroup var kv: KVCacheArguments

        func validate() throws {
            try text.check()
            switch (reference, baseline) {
            case (nil, nil): throw ValidationError("give '--reference BUNDLE' or '--baseline MODEL' with '--text-file' or '--prompts'")
            case (_?, _?): throw ValidationError("give either '--reference' or '--baseline', not both")
            case (_?, nil):
                if text.textFile != nil || prompts != nil || tokens != nil {
                    throw ValidationError("'--text-file', '--prompts' and '--tokens' need '--baseline' (a bundle holds its own prompts)")
                }
                if allowLossy { throw ValidationError("'--allow-lossy' needs '--baseline'") }
            case (nil, _?):
                guard [text.textFile, prompts, tokens].compactMap({ $0 }).count == 1 else {
                    throw ValidationError("'--baseline' needs exactly one of '--text-file', '--prompts' and '--tokens'")
                }
            }
            if text.tokenizer != nil && text.textFile == nil && prompts == nil && html == nil {
                throw ValidationError("'--tokenizer' is used for --text-file, --prompts and --html only")
            }
            if decodePrefill < 1 { throw ValidationError("'--decode-prefill' must be 1 or more") }
            if !decodePath && decodePrefill != 8 { throw ValidationError("'--decode-prefill' needs '--decode-path'") }
            if !decodePath && earlyExit != nil { throw ValidationError("'--early-exit' needs '--decode-path'") }
            if let minTop1, !(0...1).contains(minTop1) { throw ValidationError("'--min-top1' takes a share between 0 and 1, e.g. 0.97") }
            for (flag, value) in [("--max-logit-error", maxLogitError), ("--max-pdf-error", maxPdfError),
                                  ("--max-kld-mean", maxKldMean), ("--max-kld-p99", maxKldP99)] {
                if let value, !(value >= 0) { throw ValidationError("'\(flag)' takes a limit of 0 or more") }
            }
        }

        func run() throws {
            let reports = try reportingBadInput { () -> [ValidationReport] in
                let source = try referenceSource()
                let tokenizer = try optionalTokenizer(model: baseline ?? models[0], explicit: text.tokenizer)
                let showProgress = standardErrorIsTerminal && !json
                return try models.map { model in
                    let weights = try loadWeights(model)
                    let kvOptions = kv.options()
                    _ = try kvOptions.context(for: weights.config)
                    var validator = Validator(weights: weights, uncachedGreedy: uncachedGreedy, kv: kvOptions)
                    if decodePath { validator.decodePrefill = decodePrefill }
                    validator.earlyExitThreshold = earlyExit?.threshold
                    validator.criteria = chosenCriteria(default: validator.criteria)
                    if let tokenizer { validator.decode = { tokenizer.decode($0) } }
                    if showProgress && models.count > 1 { printError("\(model):") }
                    var report = try validator.validate(bundle: source) { line in
                        if showProgress { printError("  \(line)") }
                    }
                    report.modelBytes = ModelFootprint.fileBytes(model)
                    report.bitsPerWeight = ModelFootprint.bitsPerWeight(weights)
                    return report
                }
            }
            if let html {
                try reportingBadInput {
                    let page = HTMLReport.render(reports)
                    let file = try AtomicOutputFile(destination: html)
                    try file.write(Array(page.utf8))
                    try file.commit()
                }
            }
            if json {
                if reports.count == 1 {
                    print(String(decoding: try reports[0].jsonData(), as: UTF8.self))
                } else {
                    print(String(decoding: try MultiModelReport(models: reports).jsonData(), as: UTF8.self))
                }
            } else if reports.count == 1 {
                print(ReportText.render(reports[0]), terminator: "")
            } else {
                print(ReportText.comparison(reports), terminator: "")
            }
            if reports.contains(where: { !$0.pass }) { throw ExitCode(1) }
        }

        /// The bundle, or the baseline model run on the fly over the text windows or prompts.
        private func referenceSource() throws -> any ReferenceSource {
            if let reference { return try ReferenceBundle(path: reference) }
            let baseline = baseline!
            let weights = try loadReferenceWeights(baseline, allowLossy: allowLossy, flag: "--allow-lossy")
            let inputs: [ReferenceInput]
            if let prompts {
                inputs = try loadPrompts(prompts, vocab: weights.config.vocabSize) { try tokenizerFor(model: baseline, explicit: text.tokenizer) }
            } else if let tokens {
                inputs = try loadTokenLines(tokens, vocab: weights.config.vocabSize)
            } else {
                inputs = try text.windows(model: baseline)
            }
            // Greedy generation per text window would cost far more than the comparison itself.
            let contents = ReferenceContents(greedyTokens: prompts != nil ? 12 : 0)
            return LiveReference(producer: ReferenceProducer(weights: weights, contents: contents), inputs: inputs)
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
