/// Receives the input rows of the model's linear layers as the runner computes them (every loop step,
/// every layer), e.g. to gather an importance matrix. Called synchronously on the running thread;
/// the rows are valid only during the call.
public protocol ActivationObserver: AnyObject {
    /// `rows` holds `count` rows of `columns` floats: the input of every tensor in `site.tensors(layer:)`.
    func observe(_ site: LinearInput, layer: Int?, rows: UnsafePointer<Float>, count: Int, columns: Int)
}

/// Where a linear layer's input comes from; projections that share an input share one site.
public enum LinearInput: Sendable, CaseIterable {
    /// attn_norm output: attn_q, attn_k, attn_v.
    case attentionInput
    /// The attention heads' output: attn_output.
    case attentionOutput
    /// ffn_norm output: ffn_gate, ffn_up.
    case ffnInput
    /// silu(gate) * up: ffn_down.
    case ffnDownInput
    /// The normed state after each loop step: output (lm_head).
    case output

    /// GGUF names of the weights that multiply this input in block `layer` (nil for `output`).
    public func tensors(layer: Int?) -> [String] {
        let prefix = "blk.\(layer ?? 0)."
        switch self {
        case .attentionInput: return ["attn_q", "attn_k", "attn_v"].map { prefix + $0 + ".weight" }
        case .attentionOutput: return [prefix + "attn_output.weight"]
        case .ffnInput: return [prefix + "ffn_gate.weight", prefix + "ffn_up.weight"]
        case .ffnDownInput: return [prefix + "ffn_down.weight"]
        case .output: return ["output.weight"]
        }
    }
}
