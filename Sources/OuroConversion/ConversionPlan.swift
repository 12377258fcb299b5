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
        /// Why the target differs from the requested type, when it does.
        public let note: String?

        public var elementCount: Int { shape.reduce(1, *) }
        public var columns: Int { shape.last ?? 1 }
        public var rows: Int { elementCount / max(columns, 1) }
        public var byteCount: Int { rows * (targetType.rowByteCount(columns) ?? 0) }
    }

    public let requestedType: GGMLType
    public let entries: [Entry]

    public var totalBytes: Int { entries.reduce(0) { $0 + $1.byteCount } }

    /// Bits per weight over the tensors the requested type applies to (projections, embeddings, output).
    public var quantizedBitsPerWeight: Double {
        let matrices = entries.filter { $0.shape.count == 2 && $0.shape[0] > 1 }
        let elements = matrices.reduce(0) { $0 + $1.elementCount }
        let bytes = matrices.reduce(0) { $0 + $1.byteCount }
        return elements == 0 ? 0 : Double(bytes * 8) / Double(elements)
    }

    /// Norms and the exit gate stay F32: they are tiny, and the gate decides where the loop exits.
    /// A matrix whose rows are not whole blocks of the requested type falls back to F16 (F32 when the
    /// source is F32), because the block formats run along each row.
    public init(expected: [ExpectedTensor], sourceTypes: [String: GGMLType], requestedType: GGMLType) {
        self.requestedType = requestedType
        entries = expected.map { tensor in
            let source = sourceTypes[tensor.ggufName] ?? .f32
            guard tensor.isQuantizable else {
                return Entry(name: tensor.ggufName, shape: tensor.shape, sourceType: source, targetType: .f32, note: nil)
            }
            let columns = tensor.shape.last ?? 1
            if requestedType.rowByteCount(columns) != nil {
                return Entry(name: tensor.ggufName, shape: tensor.shape, sourceType: source, targetType: requestedType, note: nil)
            }
            let fallback: GGMLType = source == .f32 ? .f32 : .f16
            return Entry(name: tensor.ggufName, shape: tensor.shape, sourceType: source, targetType: fallback,
                         note: "rows of \(columns) are not whole \(requestedType.name) blocks of \(requestedType.blockSize); kept as \(fallback.name)")
        }
    }
}
