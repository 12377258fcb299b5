/// Q8_0: blocks of 32 elements stored as an f16 scale `d` followed by 32 int8 quants; x ≈ d * q.
///
/// `quantize` matches ggml's `quantize_row_q8_0_ref` (ggml-quants.c) byte for byte, and so gguf-py's
/// `Q8_0.quantize_blocks`, which documents the same target.
enum BlockQ8_0 {
    static let type = GGMLType.q8_0
    static var elements: Int { type.blockSize }
    static var bytes: Int { type.bytesPerBlock }

    static func quantize(_ x: UnsafePointer<Float>, blocks: Int, into y: UnsafeMutableRawPointer) {
        for b in 0..<blocks {
            let xb = x + b * elements
            let yb = y + b * bytes
            var amax: Float = 0
            // ggml's MAX(a, b) macro, `a > b ? a : b`, including its order of NaN handling.
            for j in 0..<elements {
                let v = abs(xb[j])
                amax = amax > v ? amax : v
            }
            let d = amax / 127
            let id: Float = d != 0 ? 1 / d : 0
            yb.storeBytes(of: Float16Bits.from(d).littleEndian, as: UInt16.self)
            let qs = (yb + 2).assumingMemoryBound(to: Int8.self)
            for j in 0..<elements {
                // roundf: half away from zero, which is Swift's default rounding rule.
                qs[j] = clampedInt8(Rounding.halfAwayFromZero(xb[j] * id))
            }
        }
    }

    static func dequantize(_ x: UnsafeRawPointer, blocks: Int, into y: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let xb = x + b * bytes
            let d = Float16Bits.toFloat(UInt16(littleEndian: xb.loadUnaligned(as: UInt16.self)))
            let qs = (xb + 2).assumingMemoryBound(to: Int8.self)
            let yb = y + b * elements
            for j in 0..<elements { yb[j] = Float(qs[j]) * d }
        }
    }

    /// dot(row, x): per block, d times the 32-element product sum. Four 8-lane partial sums per block
    /// and two block accumulators keep the FMA units busy; the summation order differs from
    /// `referenceDot`, so results agree to rounding, not bit for bit.
    static func dot(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, blocks: Int) -> Float {
        var acc0 = SIMD8<Float>.zero, acc1 = SIMD8<Float>.zero
        let xr = UnsafeRawPointer(x)
        for b in 0..<blocks {
            let rb = row + b * bytes
            let d = SIMD8<Float>(repeating: Float16Bits.toFloat(UInt16(littleEndian: rb.loadUnaligned(as: UInt16.self))))
            let xb = xr + b * elements * 4
            let q0 = floats(rb.loadUnaligned(fromByteOffset: 2, as: SIMD8<Int8>.self))
            let q1 = floats(rb.loadUnaligned(fromByteOffset: 10, as: SIMD8<Int8>.self))
            let q2 = floats(rb.loadUnaligned(fromByteOffset: 18, as: SIMD8<Int8>.self))
            let q3 = floats(rb.loadUnaligned(fromByteOffset: 26, as: SIMD8<Int8>.self))
            let s0 = (q0 * xb.loadUnaligned(as: SIMD8<Float>.self))
                .addingProduct(q1, xb.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self))
            let s1 = (q2 * xb.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float>.self))
                .addingProduct(q3, xb.loadUnaligned(fromByteOffset: 96, as: SIMD8<Float>.self))
            acc0 = acc0.addingProduct(d, s0)
            acc1 = acc1.addingProduct(d, s1)
        }
        return (acc0 + acc1).sum()
    }

    /// Plain scalar dot, the reference for `dot`.
    static func referenceDot(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, blocks: Int) -> Float {
        var total: Float = 0
        for b in 0..<blocks {
            let rb = row + b * bytes
            let d = Float16Bits.toFloat(UInt16(littleEndian: rb.loadUnaligned(as: UInt16.self)))
            var sum: Float = 0
            for j in 0..<elements {
                sum += Float(rb.load(fromByteOffset: 2 + j, as: Int8.self)) * x[b * elements + j]
            }
            total += d * sum
        }
        return total
    }
}

/// Int8 of an already-rounded float in range; NaN (only from NaN/inf inputs, where ggml's C is
/// undefined) becomes 0 instead of trapping.
@inline(__always)
func clampedInt8(_ r: Float) -> Int8 {
    guard r == r else { return 0 }
    return Int8(Swift.max(-128, Swift.min(127, r)))
}

@inline(__always)
func floats(_ q: SIMD8<Int8>) -> SIMD8<Float> {
    SIMD8<Float>(SIMD8<Int32>(truncatingIfNeeded: q))
}
