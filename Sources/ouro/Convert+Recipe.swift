import Foundation
import OuroConversion
import OuroModel

extension OuroCommand.Convert {
    /// Builds the recipe (and importance weights) the options ask for, then the converter.
    func makeConverter() throws -> Converter {
        if let uniform = type.ggmlType, !imatrix {
            return try Converter(checkpoint: checkpoint, type: uniform, name: name)
        }
        let weights = try OuroWeights.load(checkpoint: checkpoint)
        var tokens: [Int] = []
        if type == .loop || imatrix {
            if let calibration {
                tokens = try Calibration.load(path: calibration, vocab: weights.config.vocabSize)
            } else {
                let length = min(256, calibrationTokens)
                tokens = try Calibration.sample(weights: weights, sequences: (calibrationTokens + length - 1) / length,
                                                length: length, seed: seed)
                tokens = Array(tokens.prefix(calibrationTokens))
            }
        }
        let importance = imatrix ? try ImportanceMatrix.collect(weights: weights, tokens: tokens) : nil
        var recipe: QuantizationRecipe
        switch type {
        case .loop:
            var search = SensitivitySearch(importance: importance)
            // Each tensor is measured with the others in Q4_K (IQ4_NL where rows are not 256-blocks).
            search.context = .uniform(.q4_K)
            let showProgress = standardErrorIsTerminal && !json
            let result = try search.run(weights: weights, tokens: tokens, budget: bpw) { line in
                if showProgress { printError("\r\u{1B}[K  \(line)", terminator: "") }
            }
            if showProgress { printError("\r\u{1B}[K", terminator: "") }
            recipe = result.recipe
            if !json {
                print(String(format: "loop search: %d calibration tokens, budget %.3g bpw, chose %.4f bpw, sum of per-tensor final KLDs %.3e",
                             tokens.count, bpw, result.bitsPerWeight, result.predictedKLD))
            }
        case .q4_k_m, .q4_k_s, .iq4_xs_mix:
            recipe = QuantizationRecipe.preset(type.rawValue, config: weights.config, importance: imatrix)!
        default:
            recipe = .uniform(type.ggmlType!)
        }
        if imatrix { recipe.name += "+imatrix" }
        return try Converter(checkpoint: checkpoint, recipe: recipe, importance: importance, weights: weights, name: name)
    }
}
