import Quantization
import OuroModel

/// What the converter will write for each tensor, decided before any byte is written so the GGUF
/// header (which lists every tensor's type and size) can go first and data can then stream.
public struct ConversionPlan: Sendable {
    public struct Entry: Sendable {
        /// GGUF tensor name (`blk.0.attn_q.weight`).
        public let name: String
        /// Shape outermost-first, as in the checkpoint.
        public let shape: [Int]
        public let sourceType: GGMLType
        public let targetType: GGMLType
        /// Projections, token_embd and output (the recipe's tensors); norms and the exit gate are not.
        public let quantizable: Bool
        /// Why the target differs from the recipe's type, when it does.
        public let note: String?

        public var elementCount: Int { shape.reduce(1, *) }
        public var columns: Int { shape.last ?? 1 }
        public var rows: Int { elementCount / max(columns, 1) }
        public var byteCount: Int { rows * (targetType.rowByteCount(columns) ?? 0) }
    }

    public let recipe: QuantizationRecipe
    public let entries: [Entry]

    /// The recipe's default type (the `--type` of a uniform conversion).
    public var requestedType: GGMLType { recipe.defaultType }

    public var totalBytes: Int { entries.reduce(0) { $0 + $1.byteCount } }

    /// Bits per weight over the tensors the recipe applies to (projections, embeddings, output):
    /// stored bytes x 8 / elements, exactly.
    public var quantizedBitsPerWeight: Double {
        let matrices = entries.filter(\.quantizable)
        let elements = matrices.reduce(0) { $0 + $1.elementCount }
        let bytes = matrices.reduce(0) { $0 + $1.byteCount }
        return elements == 0 ? 0 : Double(bytes * 8) / Double(elements)
    }

    public init(expected: [ExpectedTensor], sourceTypes: [String: GGMLType], requestedType: GGMLType) {
        self.init(expected: expected, sourceTypes: sourceTypes, recipe: .uniform(requestedType))
    }

    /// Norms and the exit gate stay F32: they are tiny, and the gate decides where the loop exits.
    /// A matrix whose rows are not whole blocks of its type falls back (`fallback`).
    public init(expected: [ExpectedTensor], sourceTypes: [String: GGMLType], recipe: QuantizationRecipe) {
        self.recipe = recipe
        entries = expected.map { tensor in
            let source = sourceTypes[tensor.ggufName] ?? .f32
            guard tensor.isQuantizable else {
                return Entry(name: tensor.ggufName, shape: tensor.shape, sourceType: source, targetType: .f32,
                             quantizable: false, note: nil)
            }
            let wanted = recipe.type(for: tensor.ggufName)
            let columns = tensor.shape.last ?? 1
            if wanted.rowByteCount(columns) != nil {
                return Entry(name: tensor.ggufName, shape: tensor.shape, sourceType: source, targetType: wanted,
                             quantizable: true, note: nil)
            }
            let fallback = Self.fallback(for: wanted, columns: columns, source: source)
            return Entry(name: tensor.ggufName, shape: tensor.shape, sourceType: source, targetType: fallback,
                         quantizable: true,
                         note: "rows of \(columns) are not whole \(wanted.name) blocks of \(wanted.blockSize); stored as \(fallback.name)")
        }
    }

    /// The type used when rows of `columns` are not whole blocks of `type`: as llama.cpp, a 32-element
    /// block type of similar size, else F16 (F32 for an F32 source). Q3_K, IQ4_XS -> IQ4_NL and
    /// Q6_K -> Q8_0 are llama.cpp's; where llama.cpp takes a type this toolkit does not write, the
    /// nearest one that keeps at least the precision asked for: Q4_K -> IQ4_NL (llama.cpp: Q5_0),
    /// Q5_K -> Q8_0 (llama.cpp: Q5_1, 6 bpw).
    public static func fallback(for type: GGMLType, columns: Int, source: GGMLType) -> GGMLType {
        let candidates: [GGMLType]
        switch type {
        case .q3_K, .q4_K, .iq4_xs: candidates = [.iq4_nl]
        case .q5_K, .q6_K: candidates = [.q8_0]
        default: candidates = []
        }
        if let fit = candidates.first(where: { $0.rowByteCount(columns) != nil }) { return fit }
        return source == .f32 ? .f32 : .f16
    }
}
