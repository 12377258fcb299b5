import OuroModel

/// One linear input seen while running calibration tokens (a projection site at a layer, or the
/// output head), the key both the imatrix and the Hessians collectors gather under.
struct CalibrationInput: Hashable {
    let site: LinearInput
    let layer: Int?

    /// The GGUF tensors that multiply this input (a tied output head is token_embd).
    func tensors(config: OuroConfiguration) -> [String] {
        if site == .output && config.tieWordEmbeddings { return ["token_embd.weight"] }
        return site.tensors(layer: layer)
    }
}

/// Runs `tokens` through `weights` in windows of at most `window` positions (each window starts a
/// fresh context) with `observer` watching every linear input; `progress(done, total)` after each.
func runCalibration(weights: OuroWeights, tokens: [Int], window: Int, observer: ActivationObserver,
                    progress: ((Int, Int) -> Void)?) throws {
    let runner = OuroRunner(weights: weights)
    runner.activationObserver = observer
    var start = 0
    while start < tokens.count {
        let end = min(tokens.count, start + max(window, 1))
        _ = try runner.forward(tokens: Array(tokens[start..<end]))
        start = end
        progress?(start, tokens.count)
    }
}
