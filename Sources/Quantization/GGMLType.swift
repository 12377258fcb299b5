/// The ggml element formats this toolkit reads and writes, and the one table of their layout facts.
///
/// The raw value is ggml's type id as stored in GGUF tensor infos. Every other module derives sizes
/// from `blockSize` and `bytesPerBlock`; nobody repeats these numbers.
public enum GGMLType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case f32 = 0
    case f16 = 1
    case q4_0 = 2
    case q8_0 = 8
    case bf16 = 30

    /// ggml's name for the type.
    public var name: String {
        switch self {
        case .f32: return "F32"
        case .f16: return "F16"
        case .q4_0: return "Q4_0"
        case .q8_0: return "Q8_0"
        case .bf16: return "BF16"
        }
    }

    public var description: String { name }

    /// Elements per block (1 for the float types).
    public var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16: return 1
        case .q4_0, .q8_0: return 32
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
        }
    }

    /// True for types stored as blocks with a scale (as opposed to one float per element).
    public var isQuantized: Bool { blockSize > 1 }

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
