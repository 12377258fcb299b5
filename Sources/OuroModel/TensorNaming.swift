/// The one table of Hugging Face tensor names, GGUF tensor names and the shapes a configuration implies.
public enum TensorNaming {
    /// Per-layer tensors: (HF suffix after `model.layers.N.`, GGUF suffix after `blk.N.`).
    static let layerNames: [(hf: String, gguf: String)] = [
        ("input_layernorm.weight", "attn_norm.weight"),
        ("self_attn.q_proj.weight", "attn_q.weight"),
        ("self_attn.k_proj.weight", "attn_k.weight"),
        ("self_attn.v_proj.weight", "attn_v.weight"),
        ("self_attn.o_proj.weight", "attn_output.weight"),
        ("input_layernorm_2.weight", "post_attention_norm.weight"),
        ("post_attention_layernorm.weight", "ffn_norm.weight"),
        ("mlp.gate_proj.weight", "ffn_gate.weight"),
        ("mlp.up_proj.weight", "ffn_up.weight"),
        ("mlp.down_proj.weight", "ffn_down.weight"),
        ("post_attention_layernorm_2.weight", "post_ffw_norm.weight"),
    ]

    /// Every tensor the configuration implies, in file order: token_embd, the blocks, output_norm,
    /// output (omitted when tied), exit gate weight and bias.
    public static func expectedTensors(_ config: OuroConfiguration) -> [ExpectedTensor] {
        let h = config.hiddenSize, inter = config.intermediateSize
        let q = config.headCount * config.headDim, kv = config.kvHeadCount * config.headDim
        var result = [ExpectedTensor(ggufName: "token_embd.weight", hfName: "model.embed_tokens.weight",
                                     shape: [config.vocabSize, h], role: .tokenEmbedding)]
        for layer in 0..<max(0, config.layerCount) {
            for (hf, gguf) in layerNames {
                let shape: [Int]
                let role: ExpectedTensor.Role
                switch gguf {
                case "attn_q.weight": shape = [q, h]; role = .projection
                case "attn_k.weight", "attn_v.weight": shape = [kv, h]; role = .projection
                case "attn_output.weight": shape = [h, q]; role = .projection
                case "ffn_gate.weight", "ffn_up.weight": shape = [inter, h]; role = .projection
                case "ffn_down.weight": shape = [h, inter]; role = .projection
                default: shape = [h]; role = .norm
                }
                result.append(ExpectedTensor(ggufName: "blk.\(layer).\(gguf)", hfName: "model.layers.\(layer).\(hf)",
                                             shape: shape, role: role))
            }
        }
        result.append(ExpectedTensor(ggufName: "output_norm.weight", hfName: "model.norm.weight", shape: [h], role: .norm))
        if !config.tieWordEmbeddings {
            result.append(ExpectedTensor(ggufName: "output.weight", hfName: "lm_head.weight",
                                         shape: [config.vocabSize, h], role: .output))
        }
        result.append(ExpectedTensor(ggufName: "exit_gate.weight", hfName: "model.early_exit_gate.weight",
                                     shape: [1, h], role: .exitGate))
        result.append(ExpectedTensor(ggufName: "exit_gate.bias", hfName: "model.early_exit_gate.bias",
                                     shape: [1], role: .exitGate))
        return result
    }

    /// The GGUF name of an HF tensor name, independent of any configuration; nil if it is not an Ouro name.
    public static func ggufName(forHF name: String) -> String? {
        switch name {
        case "model.embed_tokens.weight": return "token_embd.weight"
        case "model.norm.weight": return "output_norm.weight"
        case "lm_head.weight": return "output.weight"
        case "model.early_exit_gate.weight": return "exit_gate.weight"
        case "model.early_exit_gate.bias": return "exit_gate.bias"
        default: break
        }
        guard let (layer, suffix) = split(name, prefix: "model.layers."),
              let entry = layerNames.first(where: { $0.hf == suffix }) else { return nil }
        return "blk.\(layer).\(entry.gguf)"
    }

    /// The HF name of a GGUF tensor name; nil if it is not an Ouro name.
    public static func hfName(forGGUF name: String) -> String? {
        switch name {
        case "token_embd.weight": return "model.embed_tokens.weight"
        case "output_norm.weight": return "model.norm.weight"
        case "output.weight": return "lm_head.weight"
        case "exit_gate.weight": return "model.early_exit_gate.weight"
        case "exit_gate.bias": return "model.early_exit_gate.bias"
        default: break
        }
        guard let (layer, suffix) = split(name, prefix: "blk."),
              let entry = layerNames.first(where: { $0.gguf == suffix }) else { return nil }
        return "model.layers.\(layer).\(entry.hf)"
    }

    /// Checkpoint tensors Hugging Face itself ignores on load (recomputed buffers, not weights).
    public static func isIgnoredHFTensor(_ name: String) -> Bool {
        name.hasSuffix(".rotary_emb.inv_freq")
    }

    /// "PREFIX<digits>.rest" -> (digits, rest), rejecting leading zeros so the mapping is one-to-one.
    private static func split(_ name: String, prefix: String) -> (Int, String)? {
        guard name.hasPrefix(prefix) else { return nil }
        let rest = name.dropFirst(prefix.count)
        guard let dot = rest.firstIndex(of: "."), let layer = Int(rest[..<dot]), layer >= 0,
              String(layer) == rest[..<dot] else { return nil }
        return (layer, String(rest[rest.index(after: dot)...]))
    }
}
