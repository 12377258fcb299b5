import Quantization

/// One tensor as described in a GGUF file's tensor infos.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    /// Innermost (contiguous) dimension first, as stored; `dimensions[0]` is the row length.
    public let dimensions: [Int]
    public let type: GGMLType
    /// Offset of the tensor's bytes from the start of the data section.
    public let offset: Int
    public let byteCount: Int

    public init(name: String, dimensions: [Int], type: GGMLType, offset: Int, byteCount: Int) {
        self.name = name
        self.dimensions = dimensions
        self.type = type
        self.offset = offset
        self.byteCount = byteCount
    }

    public var elementCount: Int { dimensions.reduce(1, *) }
    /// Outermost first, as PyTorch and safetensors write shapes.
    public var shape: [Int] { dimensions.reversed() }
    /// Elements per row (the innermost dimension; 1 for a scalar).
    public var rowLength: Int { dimensions.first ?? 1 }
    public var rowCount: Int { dimensions.dropFirst().reduce(1, *) }

    /// Bytes of `dimensions` stored as `type`, or nil when the row length is not whole blocks or the
    /// size overflows. Both the reader and the writer size tensors with this.
    static func byteCount(dimensions: [Int], type: GGMLType) -> Int? {
        var elements = 1
        for d in dimensions {
            guard d > 0 else { return nil }
            let (product, overflow) = elements.multipliedReportingOverflow(by: d)
            guard !overflow else { return nil }
            elements = product
        }
        guard let rowBytes = type.rowByteCount(dimensions.first ?? 1) else { return nil }
        let (total, overflow) = rowBytes.multipliedReportingOverflow(by: elements / (dimensions.first ?? 1))
        return overflow ? nil : total
    }
}
