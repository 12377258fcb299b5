/// One tensor an Ouro model with a given configuration must have.
public struct ExpectedTensor: Sendable, Equatable {
    /// What the tensor is for; decides whether it may be stored quantized.
    public enum Role: Sendable, Equatable {
        /// q/k/v/o and gate/up/down: matrices used by the linear kernels.
        case projection
        /// token_embd: rows are looked up (and used as the output matrix when tied).
        case tokenEmbedding
        /// output (lm_head).
        case output
        /// RMSNorm weights.
        case norm
        /// The early-exit gate (Linear hidden -> 1 with bias); tiny and precision-sensitive.
        case exitGate
    }

    public let ggufName: String
    public let hfName: String
    /// Outermost first, as PyTorch and safetensors store it.
    public let shape: [Int]
    public let role: Role

    public init(ggufName: String, hfName: String, shape: [Int], role: Role) {
        self.ggufName = ggufName
        self.hfName = hfName
        self.shape = shape
        self.role = role
    }

    /// The 7 projections, token_embd and output may be stored quantized; norms and the exit gate stay f32.
    public var isQuantizable: Bool {
        switch role {
        case .projection, .tokenEmbedding, .output: return true
        case .norm, .exitGate: return false
        }
    }

    /// GGUF dimensions: innermost first, the reverse of `shape`.
    public var ggufDimensions: [Int] { shape.reversed() }

    public var elementCount: Int { shape.reduce(1, *) }
}
