/// One tensor of a safetensors file, as described by the header and checked against the data.
public struct SafeTensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: SafeTensorsDType
    /// Outermost dimension first, as in PyTorch.
    public let shape: [Int]
    /// Absolute byte offsets in the file (header included), so they index the file's bytes directly.
    public let byteRange: Range<Int>

    /// Product of `shape` (1 for a scalar). Cannot overflow: checked when the header was read.
    public var elementCount: Int { shape.reduce(1, *) }

    /// `elementCount * dtype.size`, equal to `byteRange.count`.
    public var byteCount: Int { byteRange.count }
}
