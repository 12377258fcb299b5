import CKernels

/// Every scratch buffer one forward call needs, allocated once for `tokens` rows and reused for
/// every layer and loop step (and for every token of a cached generation).
struct Activations: @unchecked Sendable {
    let tokens: Int
    /// Positions the caller planned for; attention works in blocks, so no buffer depends on it.
    let context: Int
    let h: FloatBuffer          // [T, H] residual stream
    let normed: FloatBuffer     // [T, H] norm output fed to projections
    let q: FloatBuffer          // [T, nh*D]
    let k: FloatBuffer          // [T, nkv*D]
    let v: FloatBuffer          // [T, nkv*D]
    let attention: FloatBuffer  // [T, nh*D]
    let projected: FloatBuffer  // [T, H] o_proj / down_proj output
    let gate: FloatBuffer       // [T, I]
    let up: FloatBuffer         // [T, I]
    /// Attention scratch per query head: one tile of block scores, the running max and sum of each row.
    let scores: FloatBuffer     // [nh, attentionScratchFloats(tokens:config:)]
    let cos: FloatBuffer        // [T, D/2]
    let sin: FloatBuffer        // [T, D/2]
    let logits: FloatBuffer     // [T, V]
    let kernels: LinearKernels

    /// Scratch floats one attention task uses: a tile of scores, then max and sum per query row.
    static func attentionScratchFloats(tokens: Int, config c: OuroConfiguration) -> Int {
        ck_attn_scratch_floats() + 2 * max(tokens, c.headCount / c.kvHeadCount)
    }

    init(config c: OuroConfiguration, tokens: Int, context: Int, threads: Int = LinearKernels.defaultThreads,
         integerPrefill: Bool = true) throws {
        // Sizes come from a validated config and the request; check the request-sized products.
        guard OuroConfiguration.checkedProduct([tokens, max(c.vocabSize, c.intermediateSize, c.headCount * c.headDim, context), 4]) != nil else {
            throw ModelError.invalidRequest("\(tokens) tokens are too many for one forward pass")
        }
        self.tokens = tokens
        self.context = context
        h = FloatBuffer(tokens * c.hiddenSize)
        normed = FloatBuffer(tokens * c.hiddenSize)
        q = FloatBuffer(tokens * c.headCount * c.headDim)
        k = FloatBuffer(tokens * c.kvHeadCount * c.headDim)
        v = FloatBuffer(tokens * c.kvHeadCount * c.headDim)
        attention = FloatBuffer(tokens * c.headCount * c.headDim)
        projected = FloatBuffer(tokens * c.hiddenSize)
        gate = FloatBuffer(tokens * c.intermediateSize)
        up = FloatBuffer(tokens * c.intermediateSize)
        scores = FloatBuffer(c.headCount * Self.attentionScratchFloats(tokens: tokens, config: c))
        cos = FloatBuffer(tokens * c.headDim / 2)
        sin = FloatBuffer(tokens * c.headDim / 2)
        logits = FloatBuffer(tokens * c.vocabSize)
        kernels = LinearKernels(maxColumns: max(c.hiddenSize, c.intermediateSize, c.headCount * c.headDim),
                                threads: threads, integerPrefill: integerPrefill)
    }
}
