// The pointer-based entry points every other module uses: one row at a time, any GGMLType.
// Counts must be whole blocks (`type.rowByteCount(count) != nil`); that is the caller's contract,
// checked by `precondition` because callers validate sizes from files before they get here
// (GGUF reader, converter). Array conveniences below throw `QuantizationError` instead.

/// Quantizes `count` floats (a whole number of blocks) into `destination` (type.rowByteCount(count) bytes).
public func quantizeRow(_ type: GGMLType, _ source: UnsafePointer<Float>, count: Int, into destination: UnsafeMutableRawPointer) {
    precondition(type.rowByteCount(count) != nil, "quantizeRow: \(count) is not a whole number of \(type.name) blocks")
    switch type {
    case .f32: destination.copyMemory(from: source, byteCount: count * 4)
    case .f16: Float16Bits.convert(source, count: count, into: destination.assumingMemoryBound(to: UInt16.self))
    case .bf16: BFloat16Bits.convert(source, count: count, into: destination.assumingMemoryBound(to: UInt16.self))
    case .q8_0: BlockQ8_0.quantize(source, blocks: count / type.blockSize, into: destination)
    case .q4_0: BlockQ4_0.quantize(source, blocks: count / type.blockSize, into: destination)
    case .q3_K: BlockQ3_K.quantize(source, blocks: count / type.blockSize, importance: nil, into: destination)
    case .q4_K: BlockQ4_K.quantize(source, blocks: count / type.blockSize, importance: nil, into: destination)
    case .q5_K: BlockQ5_K.quantize(source, blocks: count / type.blockSize, importance: nil, into: destination)
    case .q6_K: BlockQ6_K.quantize(source, blocks: count / type.blockSize, importance: nil, into: destination)
    case .iq4_nl: BlockIQ4_NL.quantize(source, blocks: count / type.blockSize, importance: nil, into: destination)
    case .iq4_xs: BlockIQ4_XS.quantize(source, blocks: count / type.blockSize, importance: nil, into: destination)
    }
}

/// Expands one row of `count` elements to floats.
public func dequantizeRow(_ type: GGMLType, _ source: UnsafeRawPointer, count: Int, into destination: UnsafeMutablePointer<Float>) {
    precondition(type.rowByteCount(count) != nil, "dequantizeRow: \(count) is not a whole number of \(type.name) blocks")
    switch type {
    case .f32: UnsafeMutableRawPointer(destination).copyMemory(from: source, byteCount: count * 4)
    case .f16:
        // Row data in a GGUF map is 2-byte aligned only by convention; copy through aligned memory if not.
        if Int(bitPattern: source) % 2 == 0 {
            Float16Bits.expand(source.assumingMemoryBound(to: UInt16.self), count: count, into: destination)
        } else {
            for i in 0..<count { destination[i] = Float16Bits.toFloat(source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
        }
    case .bf16:
        for i in 0..<count { destination[i] = BFloat16Bits.toFloat(source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) }
    case .q8_0: BlockQ8_0.dequantize(source, blocks: count / type.blockSize, into: destination)
    case .q4_0: BlockQ4_0.dequantize(source, blocks: count / type.blockSize, into: destination)
    case .q3_K: BlockQ3_K.dequantize(source, blocks: count / type.blockSize, into: destination)
    case .q4_K: BlockQ4_K.dequantize(source, blocks: count / type.blockSize, into: destination)
    case .q5_K: BlockQ5_K.dequantize(source, blocks: count / type.blockSize, into: destination)
    case .q6_K: BlockQ6_K.dequantize(source, blocks: count / type.blockSize, into: destination)
    case .iq4_nl: BlockIQ4_NL.dequantize(source, blocks: count / type.blockSize, into: destination)
    case .iq4_xs: BlockIQ4_XS.dequantize(source, blocks: count / type.blockSize, into: destination)
    }
}

/// dot(row, x) for one stored row of `count` elements against float activations.
public func dotRow(_ type: GGMLType, _ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, count: Int) -> Float {
    precondition(type.rowByteCount(count) != nil, "dotRow: \(count) is not a whole number of \(type.name) blocks")
    switch type {
    case .f32: return FloatDot.f32(row, x, count: count)
    case .f16: return FloatDot.f16(row, x, count: count)
    case .bf16: return FloatDot.bf16(row, x, count: count)
    case .q8_0: return BlockQ8_0.dot(row, x, blocks: count / type.blockSize)
    case .q4_0: return BlockQ4_0.dot(row, x, blocks: count / type.blockSize)
    case .q3_K: return BlockQ3_K.dot(row, x, blocks: count / type.blockSize)
    case .q4_K: return BlockQ4_K.dot(row, x, blocks: count / type.blockSize)
    case .q5_K: return BlockQ5_K.dot(row, x, blocks: count / type.blockSize)
    case .q6_K: return BlockQ6_K.dot(row, x, blocks: count / type.blockSize)
    case .iq4_nl: return BlockIQ4_NL.dot(row, x, blocks: count / type.blockSize)
    case .iq4_xs: return BlockIQ4_XS.dot(row, x, blocks: count / type.blockSize)
    }
}

/// The plain scalar dot that `dotRow` is tested against (in-order sums, no SIMD).
public func referenceDotRow(_ type: GGMLType, _ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, count: Int) -> Float {
    precondition(type.rowByteCount(count) != nil, "referenceDotRow: \(count) is not a whole number of \(type.name) blocks")
    switch type {
    case .f32, .f16, .bf16: return FloatDot.reference(type, row, x, count: count)
    case .q8_0: return BlockQ8_0.referenceDot(row, x, blocks: count / type.blockSize)
    case .q4_0: return BlockQ4_0.referenceDot(row, x, blocks: count / type.blockSize)
    case .q3_K, .q4_K, .q5_K, .q6_K, .iq4_xs: return referenceDotByDequantizing(type, row, x, count: count)
    case .iq4_nl: return BlockIQ4_NL.referenceDot(row, x, blocks: count / type.blockSize)
    }
}

/// Quantizes a whole array (a whole number of blocks) to its stored bytes.
public func quantize(_ type: GGMLType, _ values: [Float]) throws -> [UInt8] {
    let byteCount = try type.checkedRowByteCount(values.count)
    var out = [UInt8](repeating: 0, count: byteCount)
    values.withUnsafeBufferPointer { src in
        out.withUnsafeMutableBytes { dst in
            guard let s = src.baseAddress, let d = dst.baseAddress else { return }
            quantizeRow(type, s, count: values.count, into: d)
        }
    }
    return out
}

/// Expands stored bytes holding exactly `count` elements of `type`.
public func dequantize(_ type: GGMLType, _ bytes: UnsafeRawBufferPointer, count: Int) throws -> [Float] {
    let byteCount = try type.checkedRowByteCount(count)
    guard bytes.count == byteCount else {
        throw QuantizationError.byteCountMismatch(type: type, count: count, expected: byteCount, actual: bytes.count)
    }
    var out = [Float](repeating: 0, count: count)
    out.withUnsafeMutableBufferPointer { dst in
        guard let s = bytes.baseAddress, let d = dst.baseAddress else { return }
        dequantizeRow(type, s, count: count, into: d)
    }
    return out
}

/// The plain reference for super-block types: expand each block, then a scalar dot (block by block, so
/// no row-sized buffer).
func referenceDotByDequantizing(_ type: GGMLType, _ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, count: Int) -> Float {
    var total: Float = 0
    withUnsafeTemporaryAllocation(of: Float.self, capacity: type.blockSize) { w in
        for b in 0..<count / type.blockSize {
            dequantizeRow(type, row + b * type.bytesPerBlock, count: type.blockSize, into: w.baseAddress!)
            for i in 0..<type.blockSize { total += w[i] * x[b * type.blockSize + i] }
        }
    }
    return total
}
