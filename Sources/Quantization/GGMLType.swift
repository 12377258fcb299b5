/// The ggml element formats this toolkit reads and writes, and the one table of their layout facts.
///
/// The raw value is ggml's type id as stored in GGUF tensor infos. Every other module derives sizes
/// from `blockSize` and `bytesPerBlock`; nobody repeats these numbers.
public enum GGMLType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case f32 = 0
    case f16 = 1
    case q4_0 = 2
    case q8_0 = 8
    case q3_K = 11
    case q4_K = 12
    case q5_K = 13
    case q6_K = 14
    case iq4_nl = 20
    case iq4_xs = 23
    case bf16 = 30

    /// ggml's name for the type.
    public var name: String {
        switch self {
        case .f32: return "F32"
        case .f16: return "F16"
        case .q4_0: return "Q4_0"
        case .q8_0: return "Q8_0"
        case .q3_K: return "Q3_K"
        case .q4_K: return "Q4_K"
        case .q5_K: return "Q5_K"
        case .q6_K: return "Q6_K"
        case .iq4_nl: return "IQ4_NL"
        case .iq4_xs: return "IQ4_XS"
        case .bf16: return "BF16"
        }
    }

    public var description: String { name }

    /// Elements per block (1 for the float types).
    public var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16: return 1
        case .q4_0, .q8_0, .iq4_nl: return 32
        case .q3_K, .q4_K, .q5_K, .q6_K, .iq4_xs: return 256      // ggml's QK_K super-blocks
        }
    }

    /// Bytes per block: the f16 scale followed by the packed quants for the block types.
    public var bytesPerBlock: Int {
        switch self {
        case .f32: return 4
        case .f16: return 2
        case .bf16: return 2
        case .q4_0: return 2 + 32 / 2
        case .q8_0: return 2 + 32
        case .q3_K: return 256 / 8 + 256 / 4 + 12 + 2       // high bits, low 2 bits, 16 packed 6-bit scales, d
        case .q4_K: return 2 + 2 + 12 + 256 / 2            // d, dmin, 8 packed 6-bit scale/min pairs, nibbles
        case .q5_K: return 2 + 2 + 12 + 256 / 8 + 256 / 2  // as Q4_K plus one high bit per element
        case .q6_K: return 256 / 2 + 256 / 4 + 256 / 16 + 2 // low nibbles, high 2 bits, int8 scales, d
        case .iq4_nl: return 2 + 32 / 2
        case .iq4_xs: return 2 + 2 + 256 / 64 + 256 / 2   // d, 8 high scale bit pairs, 8 low scale nibbles, nibbles
        }
    }

    /// True for types stored as blocks with a scale (as opposed to one float per element).
    public var isQuantized: Bool { blockSize > 1 }

    /// Stored bits per element (3.4375 for Q3_K, 4.25 for IQ4_XS, 4.5 for Q4_0 and Q4_K, 5.5 for Q5_K,
    /// 6.5625 for Q6_K...).
    public var bitsPerWeight: Double { Double(bytesPerBlock * 8) / Double(blockSize) }

    /// The type with ggml id `id`, or nil when this toolkit does not know it.
    public init?(id: UInt32) { self.init(rawValue: id) }

    /// The type named `name` (case-insensitive: "q8_0", "Q8_0"), or nil.
    public init?(name: String) {
        let upper = name.uppercased()
        guard let match = Self.allCases.first(where: { $0.name == upper }) else { return nil }
        self = match
    }

    /// Bytes of a row of `elements` elements; nil when `elements` is negative, not a whole number of
    /// blocks, or the size overflows.
    public func rowByteCount(_ elements: Int) -> Int? {
        guard elements >= 0, elements % blockSize == 0 else { return nil }
        let (bytes, overflow) = (elements / blockSize).multipliedReportingOverflow(by: bytesPerBlock)
        return overflow ? nil : bytes
    }

    /// Like `rowByteCount`, but throws `QuantizationError` naming the problem.
    public func checkedRowByteCount(_ elements: Int) throws -> Int {
        guard elements >= 0, elements % blockSize == 0 else {
            throw QuantizationError.notWholeBlocks(type: self, count: elements)
        }
        guard let bytes = rowByteCount(elements) else { throw QuantizationError.sizeOverflow(type: self, count: elements) }
        return bytes
    }
}
