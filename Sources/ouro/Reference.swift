import ArgumentParser
import Foundation
import OuroModel
import OuroValidation

extension OuroCommand {
    struct Reference: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a reference bundle with this runtime, from a lossless model (no PyTorch needed).",
            discussion: """
                Runs a checkpoint folder (or an f32/bf16/f16 GGUF file converted losslessly) in float32 \
                over the prompts and writes every loop step's logits, hidden states and gate logits, the \
                exit pdf, every exit mode, greedy tokens and labels in the format of \
                Formats/reference-bundle.md, as Scripts/reference_logits.py does with PyTorch (our \
                runtime matches it within 2.4e-5 per logit on the bundled models).

                Prompts: --prompts P.json, a JSON array whose items are strings (tokenized with the \
                model's tokenizer) or arrays of token ids; or --text-file F, cut into windows of --ctx \
                tokens (at most --chunks), the second half of each scored for perplexity, as \
                llama-perplexity does.

                Size: each position costs 4 bytes (f32) or 2 (--logits f16) per vocabulary entry for \
                every loop step plus final, weighted, each threshold and each exit-at-step row: \
                49,152 x 9 x 4 B = 1.7 MB per position for Ouro-1.4B with the defaults; \
                --logits f16 --only-logits keeps 5 rows in f16, 0.5 MB. To compare files on long \
                text without any bundle, use `ouro validate --baseline`.

                Examples:
                  ouro reference ./Ouro-1.4B --prompts prompts.json -o ref.safetensors.zst
                  ouro reference ./Ouro-1.4B --text-file wiki.txt --ctx 512 --chunks 8 \\
                      --only-logits --logits f16 -o wiki.safetensors
                """)

        @Argument(help: "A checkpoint folder or a lossless (f32/bf16/f16) GGUF file.")
        var model: String

        @Option(help: "JSON array of prompts: strings or arrays of token ids.")
        var prompts: String?

        @OptionGroup var text: TextWindowOptions

        @Option(name: .shortAndLong, help: "Bundle to write; a name ending in .zst is zstd-compressed.")
        var output: String

        @Flag(help: "Accept a quantized or otherwise lossy model as the reference.")
        var allowLossy = false

        @Option(help: "Storage of logit tensors: f32 (exact) or f16 (half the size; fine for KLD, not for 1e-3 checks).")
        var logits: ReferenceBundleWriter.LogitType = .f32

        @Option(help: "Thresholds whose exit steps and logits are recorded (comma list; empty for none).")
        var thresholds = "0.5,0.9"

        @Option(help: "0-based loop steps whose exit_at_step logits are recorded (comma list; empty for none).")
        var exitAtSteps = "1"

        @Option(help: "Greedy new tokens to record, cached and uncached (default 12 with --prompts, 0 with --text-file).")
        var greedy: Int?

        @Flag(help: "Omit the weighted-exit logits.")
        var noWeighted = false

        @Flag(help: "Omit the hidden states (step_hidden).")
        var noHidden = false

        @Flag(help: "Record only what comparing quantized files needs: step and final logits, gates, exit pdf.")
        var onlyLogits = false

        @Option(help: "zstd level for .zst outputs.")
        var level = 10

        func validate() throws {
            try text.check()
            guard (prompts == nil) != (text.textFile == nil) else {
                throw ValidationError("give exactly one of '--prompts' and '--text-file'")
            }
            if let greedy, !(0...4096).contains(greedy) { throw ValidationError("'--greedy' takes 0 to 4096 tokens") }
            if !(1...22).contains(level) { throw ValidationError("'--level' takes a zstd level from 1 to 22") }
            if !output.hasSuffix(".zst") && level != 10 { throw ValidationError("'--level' needs an output name ending in .zst") }
            if onlyLogits && (thresholds != "0.5,0.9" || exitAtSteps != "1" || greedy != nil || noWeighted || noHidden) {
                throw ValidationError("'--only-logits' records no thresholds, exit-at-step logits, greedy tokens, weighted logits or hidden states; drop those options")
            }
            _ = try parsedThresholds()
            _ = try parsedSteps()
        }

        private func parsedThresholds() throws -> [ThresholdKey] {
            try thresholds.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.map {
                guard let key = ThresholdKey($0), (0...1).contains(key.value) else {
                    throw ValidationError("'--thresholds': '\($0)' is not a number between 0 and 1")
                }
                return key
            }
        }

        private func parsedSteps() throws -> [Int] {
            try exitAtSteps.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.map {
                guard let k = Int($0), k >= 0 else { throw ValidationError("'--exit-at-steps': '\($0)' is not a 0-based loop step") }
                return k
            }
        }

        func run() throws {
            try reportingBadInput {
                let weights = try loadReferenceWeights(model, allowLossy: allowLossy, flag: "--allow-lossy")
                let inputs = try prompts.map {
                    try loadPrompts($0, vocab: weights.config.vocabSize) { try tokenizerFor(model: model, explicit: text.tokenizer) }
                } ?? text.windows(model: model)
                var contents = ReferenceContents(thresholds: try parsedThresholds(), exitAtSteps: try parsedSteps(),
                                                 weighted: !noWeighted, stepHidden: !noHidden,
                                                 greedyTokens: greedy ?? (prompts != nil ? 12 : 0))
                if onlyLogits { contents = .logitsOnly }
                let producer = ReferenceProducer(weights: weights, contents: contents)
                let layouts = inputs.enumerated().map { producer.layout(index: $0, input: $1) }
                let d = producer.dimensions
                var metadata: [String: String] = [
                    "format": ReferenceBundle.formatName, "format_version": ReferenceBundle.formatVersion,
                    "tool": "ouro reference", "source_model": model,
                    "source_type": weights.fileType?.name ?? weights.quantizationRecipe ?? "mixed",
                    "source_lossless": weights.storesSourceExactly == true ? "true" : "false",
                    "total_ut_steps": "\(d.steps)", "vocab_size": "\(d.vocab)", "hidden_size": "\(d.hidden)",
                    "early_exit_threshold": weights.config.earlyExitThreshold.map { "\($0)" } ?? "null",
                    "dtype": "float32", "logit_dtype": logits.rawValue,
                ]
                if let bytes = ModelFootprint.fileBytes(model) { metadata["source_bytes"] = "\(bytes)" }
                if let prompts { metadata["prompts"] = prompts }
                if let file = text.textFile {
                    metadata["text_file"] = file
                    metadata["windows"] = "\(inputs.count) x \(text.ctx) tokens, second half scored (llama-perplexity)"
                }
                let writer = try ReferenceBundleWriter(
                    destination: output, layouts: layouts, steps: d.steps, vocab: d.vocab,
                    hidden: contents.stepHidden ? d.hidden : nil, metadata: metadata, logitType: logits,
                    compressionLevel: output.hasSuffix(".zst") ? level : nil)
                let showProgress = standardErrorIsTerminal
                for (n, input) in inputs.enumerated() {
                    try writer.append(try producer.produce(index: n, input: input))
                    if showProgress { printError("  p\(n): \(input.tokens.count) tokens") }
                }
                let bytes = try writer.finish()
                printError("wrote \(output): \(inputs.count) prompts, \(inputs.reduce(0) { $0 + $1.tokens.count }) tokens, "
                           + "\(formatBytes(bytes))\(output.hasSuffix(".zst") ? " (\(formatBytes(writer.plainSize)) uncompressed)" : "")")
            }
        }
    }
}

extension ReferenceBundleWriter.LogitType: ExpressibleByArgument {}
