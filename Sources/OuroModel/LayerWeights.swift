/// The weights of one decoder block (shared by every loop step).
public struct LayerWeights: Sendable {
    public let attnNorm: WeightTensor        // input_layernorm
    public let q: WeightTensor
    public let k: WeightTensor
    public let v: WeightTensor
    public let o: WeightTensor
    public let postAttentionNorm: WeightTensor   // input_layernorm_2
    public let ffnNorm: WeightTensor         // post_attention_layernorm
    public let gate: WeightTensor
    public let up: WeightTensor
    public let down: WeightTensor
    public let postFFNNorm: WeightTensor     // post_attention_layernorm_2
}
