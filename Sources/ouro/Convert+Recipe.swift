import Foundation
import OuroConversion
import OuroModel
import Quantization

/// A combination of `convert` options where one would be ignored: one line, exit 2.
struct OptionConflict: Error, CustomStringConvertible {
    let description: String
}

extension OuroCommand.Convert {
    /// `--type`, or `loop` when only `--bpw` is given, else q8_0.
    var outputType: OutputType { type ?? (bpw != nil ? .loop : .q8_0) }
    /// Chosen on the selection set (Docs/QUANTIZATION.md): GPTQ codes cut Q4_K's final KLD ~3x; the
    /// imatrix on top of them changed nothing measurable, so the loop preset uses GPTQ alone.
    var usesImatrix: Bool { imatrix ?? false }
    var usesGPTQ: Bool { gptq ?? (outputType == .loop) }
    var needsCalibration: Bool { outputType == .loop || usesImatrix || usesGPTQ }

    /// Every option given must change the result.
    func checkOptionCombination() throws {
        if let type, type != .loop, bpw != nil {
            throw OptionConflict(description: "'--bpw' is the budget of --type loop; --type \(type.rawValue) has a fixed size (drop one)")
        }
        let unweighted: Set<OutputType> = [.f32, .f16, .bf16, .q8_0]
        if imatrix == true && unweighted.contains(outputType) {
            throw OptionConflict(description: "'--imatrix' does not change --type \(outputType.rawValue) (ggml ignores importance for it)")
        }
        if gptq == true && unweighted.contains(outputType) {
            throw OptionConflict(description: "'--gptq' applies to the 3- to 6-bit block types, the presets and loop, not --type \(outputType.rawValue)")
        }
        if gptqDamping != nil && !usesGPTQ { throw OptionConflict(description: "'--gptq-damping' applies to --gptq") }
        if let gptqDamping, !(gptqDamping > 0 && gptqDamping.isFinite) { throw OptionConflict(description: "'--gptq-damping' takes a positive number, e.g. 0.01") }
        if !needsCalibration {
            for (flag, given) in [("--calibration", calibration != nil), ("--calibration-tokens", calibrationTokens != nil), ("--seed", seed != nil)] where given {
                throw OptionConflict(description: "'\(flag)' is used only by --type loop, --imatrix or --gptq")
            }
        }
        if calibration != nil, let flag = calibrationTokens != nil ? "--calibration-tokens" : seed != nil ? "--seed" : nil {
            throw OptionConflict(description: "'\(flag)' sets the self-sampled calibration; it does nothing with '--calibration FILE'")
        }
    }

    /// Builds the recipe (and importance weights, Hessians) the options ask for, then the converter.
    func makeConverter() throws -> Converter {
        let type = outputType
        if let uniform = type.ggmlType, !usesImatrix, !usesGPTQ {
            return try Converter(checkpoint: checkpoint, type: uniform, name: name)
        }
        let weights = try OuroWeights.load(checkpoint: checkpoint)
        if type == .loop {
            let budget = bpw ?? 4.5, lowest = SensitivitySearch().lowestBitsPerWeight(weights.config)
            if budget < lowest {
                throw OptionConflict(description: String(format: "--bpw %g is below the lowest reachable budget, %.4f bpw (every matrix in its cheapest candidate type)", budget, lowest))
            }
        }
        let stages = StageLog(quiet: false)
        // Calibration forwards (sampling, activations) run on a Q8_0 copy of the matrices: half a
        // bf16 model's bytes, through the integer kernels; its activations are within Q8_0's error
        // (final KLD ~5e-5 on the trained fixture) of the exact model's.
        let encoding = stages.begin("calibration model: matrices re-encoded as Q8_0 in memory", total: 1)
        let calibrationModel = try weights.reencoded(as: .q8_0) { done, total in
            encoding.total = total
            encoding.advance(to: done)
        }
        var tokens: [Int] = []
        let window: Int
        if let calibration {
            tokens = try Calibration.load(path: calibration, vocab: weights.config.vocabSize)
            window = 512
        } else {
            let count = calibrationTokens ?? 1024, length = min(256, count)
            let sequences = (count + length - 1) / length
            let stage = stages.begin("calibration: sampling \(sequences) x \(length) tokens from the model, the sequences in lockstep", total: length)
            let texts = try BatchedForward(runner: OuroRunner(weights: calibrationModel))
                .sample(sequences: sequences, length: length, seed: seed ?? 0) { done, _ in stage.advance(to: done) }
            tokens = Array(texts.joined().prefix(count))
            window = length   // each sequence its own context
        }
        let groups = HessianGroups(weights: calibrationModel, tokens: tokens, window: window)
        var activations: StageLog.Stage?
        groups.onGroupStart = { g, count in
            let layers = groups.groups[g]
            let which = count == 1 ? "" : " (layers \(layers.lowerBound)-\(layers.upperBound - 1), pass \(g + 1)/\(count))"
            activations = stages.begin("activations\(which): \(tokens.count) calibration tokens through every loop step", total: tokens.count)
        }
        groups.onWindow = { done, _ in activations?.advance(to: done) }
        let budget = bpw ?? 4.5
        let searchMeasures = type == .loop && UniformStartSearch().measuredMoves(for: budget, config: weights.config) > 0
        // The search and the imatrix need every H at once; GPTQ alone takes them a layer group at a
        // time as the file is written (Ouro-1.4B's Hessians are ~4.2 GB in f32).
        var hessians: Hessians?
        if searchMeasures || usesImatrix {
            hessians = try groups.all() ?? Hessians.collect(weights: calibrationModel, tokens: tokens, window: window) { done, total in
                if activations == nil { activations = stages.begin("activations: \(total) calibration tokens through every loop step, every layer at once", total: total) }
                activations?.advance(to: done)
            }
        }
        let importance = usesImatrix ? hessians?.importance : nil
        var recipe: QuantizationRecipe
        switch type {
        case .loop:
            var search = UniformStartSearch()
            search.importance = importance
            if usesGPTQ { search.hessians = hessians }
            if let gptqDamping { search.damping = gptqDamping }
            let base = search.base(for: budget, config: weights.config)
            let measure = stages.begin("search: \(base.name) everywhere, then moves (token_embd, output, each layer matrix role in every layer at once) measured through the looped model", total: 1)
            let result = try search.run(weights: weights, tokens: tokens, budget: budget) { done, total, line in
                measure.total = total
                measure.advance(to: done, detail: line)
            }
            if result.forwards == 0 { measure.total = 0; measure.advance(to: 0, detail: "") }
            recipe = result.recipe
            if !json {
                print(String(format: "loop search: %d calibration tokens, budget %.3g bpw, base %@, %d tensors moved, %.4f bpw",
                             tokens.count, budget, base.name, result.recipe.overrides.count, result.bitsPerWeight))
            }
        case .q4_k_m, .q4_k_s, .iq4_xs_mix:
            recipe = QuantizationRecipe.preset(type.rawValue, config: weights.config, importance: usesImatrix)!
        default:
            recipe = .uniform(type.ggmlType!)
        }
        if usesImatrix { recipe.name += "+imatrix" }
        if usesGPTQ { recipe.name += "+gptq" }
        var converter = try Converter(checkpoint: checkpoint, recipe: recipe, importance: importance,
                                      hessians: usesGPTQ ? hessians : nil, weights: weights, name: name)
        if usesGPTQ && hessians == nil { converter.hessianGroups = groups }
        if let gptqDamping { converter.damping = gptqDamping }
        return converter
    }
}

/// Progress of the slow stages on stderr, terminal or not: a line when a stage starts, then a line at
/// most every 10 s with the share done and an ETA, and one when it ends. Quiet with --json.
final class StageLog {
    let quiet: Bool
    init(quiet: Bool) { self.quiet = quiet }

    func begin(_ title: String, total: Int) -> Stage {
        if !quiet { printError(title) }
        return Stage(title: String(title.prefix { $0 != ":" }), total: total, quiet: quiet)
    }

    final class Stage {
        let title: String, quiet: Bool
        var total: Int
        let started = Date()
        var lastLine = Date()

        init(title: String, total: Int, quiet: Bool) {
            self.title = title
            self.total = max(total, 1)
            self.quiet = quiet
        }

        func advance(to done: Int, detail: String = "") {
            guard !quiet else { return }
            let now = Date(), seconds = now.timeIntervalSince(started)
            if done >= total {
                printError(String(format: "%@: done in %.1f s", title, seconds))
            } else if now.timeIntervalSince(lastLine) >= 10 {
                lastLine = now
                let share = Double(done) / Double(total)
                printError(String(format: "%@: %d/%d, %.0f s, ETA %.0f s%@", title, done, total, seconds,
                                  seconds * (1 - share) / max(share, 1e-9), detail.isEmpty ? "" : "  (\(detail))"))
            }
        }
    }
}
