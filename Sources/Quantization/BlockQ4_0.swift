/// Q4_0: blocks of 32 elements stored as an f16 scale `d` followed by 16 bytes of 4-bit quants;
/// byte j holds element j in its low nibble and element j + 16 in its high nibble; x ≈ d * (q - 8).
///
/// `quantize` matches ggml's `quantize_row_q4_0_ref` (ggml-quants.c) byte for byte: the signed value
/// of largest magnitude (first one on ties) maps to -8, and quants are truncated after adding 8.5.
enum BlockQ4_0 {
    static let type = GGMLType.q4_0
    static var elements: Int { type.blockSize }
    static var bytes: Int { type.bytesPerBlock }

    static func quantize(_ x: UnsafePointer<Float>, blocks: Int, into y: UnsafeMutableRawPointer) {
        let half = elements / 2
        for b in 0..<blocks {
            let xb = x + b * elements
            let yb = y + b * bytes
            var amax: Float = 0
            var max: Float = 0
            for j in 0..<elements where amax < abs(xb[j]) {
                amax = abs(xb[j])
                max = xb[j]
            }
            let d = max / -8
            let id: Float = d != 0 ? 1 / d : 0
            yb.storeBytes(of: Float16Bits.from(d).littleEndian, as: UInt16.self)
            let qs = (yb + 2).assumingMemoryBound(to: UInt8.self)
            for j in 0..<half {
                // Kept as two separate roundings (product, then + 8.5) like the C source compiled
                // without FMA contraction; a fused multiply-add would change some ties.
                let lo = nibble(xb[j] * id + 8.5)
                let hi = nibble(xb[j + half] * id + 8.5)
                qs[j] = lo | hi << 4
            }
        }
    }

    static func dequantize(_ x: UnsafeRawPointer, blocks: Int, into y: UnsafeMutablePointer<Float>) {
        let half = elements / 2
        for b in 0..<blocks {
            let xb = x + b * bytes
            let d = Float16Bits.toFloat(UInt16(littleEndian: xb.loadUnaligned(as: UInt16.self)))
            let yb = y + b * elements
            for j in 0..<half {
                let byte = xb.load(fromByteOffset: 2 + j, as: UInt8.self)
                yb[j] = Float(Int(byte & 0x0f) - 8) * d
                yb[j + half] = Float(Int(byte >> 4) - 8) * d
            }
        }
    }

    /// dot(row, x): unpack both nibble halves to floats (q - 8), four 8-lane products per block,
    /// two block accumulators. Agrees with `referenceDot` to rounding.
    static func dot(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, blocks: Int) -> Float {
        var acc0 = SIMD8<Float>.zero, acc1 = SIMD8<Float>.zero
        let xr = UnsafeRawPointer(x)
        let eight = SIMD16<UInt8>(repeating: 8)
        for b in 0..<blocks {
            let rb = row + b * bytes
            let d = SIMD8<Float>(repeating: Float16Bits.toFloat(UInt16(littleEndian: rb.loadUnaligned(as: UInt16.self))))
            let packed = rb.loadUnaligned(fromByteOffset: 2, as: SIMD16<UInt8>.self)
            let lo = SIMD16<Int8>(truncatingIfNeeded: (packed & 0x0f) &- eight)
            let hi = SIMD16<Int8>(truncatingIfNeeded: (packed &>> 4) &- eight)
            let xb = xr + b * elements * 4
            let s0 = (floats(lo.lowHalf) * xb.loadUnaligned(as: SIMD8<Float>.self))
                .addingProduct(floats(lo.highHalf), xb.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self))
            let s1 = (floats(hi.lowHalf) * xb.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float>.self))
                .addingProduct(floats(hi.highHalf), xb.loadUnaligned(fromByteOffset: 96, as: SIMD8<Float>.self))
            acc0 = acc0.addingProduct(d, s0)
            acc1 = acc1.addingProduct(d, s1)
        }
        return (acc0 + acc1).sum()
    }

    /// Plain scalar dot, the reference for `dot`.
    static func referenceDot(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, blocks: Int) -> Float {
        let half = elements / 2
        var total: Float = 0
        for b in 0..<blocks {
            let rb = row + b * bytes
            let d = Float16Bits.toFloat(UInt16(littleEndian: rb.loadUnaligned(as: UInt16.self)))
            var sum: Float = 0
            for j in 0..<half {
                let byte = rb.load(fromByteOffset: 2 + j, as: UInt8.self)
                sum += Float(Int(byte & 0x0f) - 8) * x[b * elements + j]
                sum += Float(Int(byte >> 4) - 8) * x[b * elements + j + half]
            }
            total += d * sum
        }
        return total
    }
}

/// ggml's `MIN(15, (int8_t)(v))`: truncation toward zero, capped at 15. For finite inputs v lies in
/// [0.5, 16.5]; NaN (from NaN/inf inputs, undefined in C) becomes 8, the zero quant.
@inline(__always)
private func nibble(_ v: Float) -> UInt8 {
    guard v == v else { return 8 }
    return UInt8(Int32(Swift.max(0, Swift.min(15, v))))   // Int32(_:) truncates toward zero
}
