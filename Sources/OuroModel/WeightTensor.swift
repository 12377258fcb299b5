import Quantization

/// One weight tensor used in place: bytes straight from a memory map (or an owned copy), in any
/// ggml element type. Rows are the outermost dimension; a 1-D tensor is one row.
public struct WeightTensor: @unchecked Sendable {
    public let type: GGMLType
    /// Outermost first: [rows, columns] for matrices, [count] for vectors.
    public let shape: [Int]
    public let bytes: UnsafeRawBufferPointer
    /// Keeps the mapping (or buffer) behind `bytes` alive.
    let owner: AnyObject

    /// `bytes` must hold exactly rows x rowByteCount(columns) bytes (checked by the loaders).
    init(type: GGMLType, shape: [Int], bytes: UnsafeRawBufferPointer, owner: AnyObject) {
        self.type = type
        self.shape = shape
        self.bytes = bytes
        self.owner = owner
    }

    public var rows: Int { shape.count >= 2 ? shape.dropLast().reduce(1, *) : 1 }
    public var columns: Int { shape.last ?? 1 }
    public var rowByteCount: Int { type.rowByteCount(columns) ?? 0 }

    /// Start of row `index` (0 ..< rows).
    @inline(__always)
    func row(_ index: Int) -> UnsafeRawPointer {
        bytes.baseAddress! + index * rowByteCount
    }

    /// The whole tensor expanded to floats; for the small vectors (norms, exit gate) only.
    public func floats() -> [Float] {
        let cols = columns
        return [Float](unsafeUninitializedCapacity: rows * cols) { buffer, count in
            for r in 0..<rows { dequantizeRow(type, row(r), count: cols, into: buffer.baseAddress! + r * cols) }
            count = rows * cols
        }
    }

    /// f32 data used directly by BLAS must be 4-byte aligned; mmap'd safetensors data need not be.
    /// Returns self, or an aligned owned copy.
    func alignedForFloatAccess() -> WeightTensor {
        guard type == .f32, let base = bytes.baseAddress,
              Int(bitPattern: base) % MemoryLayout<Float>.alignment != 0 else { return self }
        let copy = OwnedBytes(copying: bytes)
        return WeightTensor(type: type, shape: shape, bytes: copy.bytes, owner: copy)
    }
}

/// An owned, 64-byte aligned byte buffer that lives as long as the tensors referring to it.
final class OwnedBytes: @unchecked Sendable {
    let bytes: UnsafeRawBufferPointer
    private let storage: UnsafeMutableRawBufferPointer

    init(copying source: UnsafeRawBufferPointer) {
        storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(source.count, 1), alignment: 64)
        if source.count > 0 { storage.copyMemory(from: source) }
        bytes = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(storage)[0..<source.count])
    }

    deinit { storage.deallocate() }
}
