// Element-wise access to the codes of an already-encoded block: given the block's scales (as ggml's
// quantizer chose them), set one element's code to the representable value nearest a target. This is
// what error-compensating rounding (GPTQ) needs: the scales of a block are chosen once, then each
// column's code is picked after the error of the previous columns has been fed forward.

/// Types whose element codes `roundElement` can set: the 4-bit and 6-bit block types.
public func supportsElementRounding(_ type: GGMLType) -> Bool {
    switch type {
    case .q4_0, .iq4_nl, .q4_K, .q6_K: return true
    default: return false
    }
}

/// Sets element `index` (0..<type.blockSize) of the encoded block at `block` to the code whose value,
/// under the block's stored scales, is nearest to `target`, and returns that value (what the
/// dequantizer will produce for it). The scales are not changed.
@inline(__always)
public func roundElement(_ type: GGMLType, block: UnsafeMutableRawPointer, index: Int, target: Float) -> Float {
    switch type {
    case .q4_0: return roundQ4_0(block, index, target)
    case .iq4_nl: return roundIQ4_NL(block, index, target)
    case .q4_K: return roundQ4_K(block, index, target)
    case .q6_K: return roundQ6_K(block, index, target)
    default: preconditionFailure("roundElement: \(type.name) has no element codes")
    }
}

@inline(__always)
private func setNibble(_ byte: UnsafeMutablePointer<UInt8>, high: Bool, _ q: UInt8) {
    byte.pointee = high ? (byte.pointee & 0x0f) | q << 4 : (byte.pointee & 0xf0) | q
}

@inline(__always)
private func clampedCode(_ v: Float, _ top: Int) -> Int {
    guard v == v else { return 0 }
    // Clamping to [-1, top + 1] first changes nothing (rounding is monotonic) and keeps it exact.
    return Swift.max(0, Swift.min(top, Int(Rounding.halfToEvenSmall(Swift.max(-1, Swift.min(Float(top + 1), v))))))
}

/// Q4_0: x = d·(q - 8).
private func roundQ4_0(_ block: UnsafeMutableRawPointer, _ i: Int, _ target: Float) -> Float {
    let d = Float16Bits.toFloat(UInt16(littleEndian: block.loadUnaligned(as: UInt16.self)))
    let q = d == 0 ? 8 : clampedCode(target / d + 8, 15)
    setNibble((block + 2 + i % 16).assumingMemoryBound(to: UInt8.self), high: i >= 16, UInt8(q))
    return d * Float(q - 8)
}

/// IQ4_NL: x = d·kvalues[q] (non-uniform grid: nearest by search).
private func roundIQ4_NL(_ block: UnsafeMutableRawPointer, _ i: Int, _ target: Float) -> Float {
    let d = Float16Bits.toFloat(UInt16(littleEndian: block.loadUnaligned(as: UInt16.self)))
    var best = 8, bestError = Float.infinity
    if d != 0 {
        for (q, v) in BlockIQ4_NL.floatValues.enumerated() {
            let e = abs(d * v - target)
            if e < bestError { bestError = e; best = q }
        }
    }
    setNibble((block + 2 + i % 16).assumingMemoryBound(to: UInt8.self), high: i >= 16, UInt8(best))
    return d * BlockIQ4_NL.floatValues[best]
}

/// Q4_K: x = d·sc[j]·q - dmin·m[j] for sub-block j = i / 32.
private func roundQ4_K(_ block: UnsafeMutableRawPointer, _ i: Int, _ target: Float) -> Float {
    let d = Float16Bits.toFloat(UInt16(littleEndian: block.loadUnaligned(as: UInt16.self)))
    let dmin = Float16Bits.toFloat(UInt16(littleEndian: block.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
    let j = i / 32
    let (sc, m) = BlockQ4_K.scaleMin(j, UnsafePointer((block + 4).assumingMemoryBound(to: UInt8.self)))
    let dj = d * Float(sc), dm = dmin * Float(m)
    let q = dj == 0 ? 0 : clampedCode((target + dm) / dj, 15)
    let byte = (block + 16 + 32 * (j / 2) + i % 32).assumingMemoryBound(to: UInt8.self)
    setNibble(byte, high: j % 2 == 1, UInt8(q))
    return dj * Float(q) - dm
}

/// Q6_K: x = d·sc[g]·(q - 32), 16-element groups; low 4 bits in ql, top 2 in qh.
private func roundQ6_K(_ block: UnsafeMutableRawPointer, _ i: Int, _ target: Float) -> Float {
    let d = Float16Bits.toFloat(UInt16(littleEndian: block.loadUnaligned(fromByteOffset: 208, as: UInt16.self)))
    let h = i / 128, r = i % 128, k = r / 32, l = r % 32
    let g = 8 * h + l / 16 + 2 * k
    let scale = d * Float(block.load(fromByteOffset: 192 + g, as: Int8.self))
    let q = scale == 0 ? 32 : clampedCode(target / scale + 32, 63)
    let ql = (block + 64 * h + l + (k % 2 == 1 ? 32 : 0)).assumingMemoryBound(to: UInt8.self)
    setNibble(ql, high: k >= 2, UInt8(q & 0xf))
    let qh = (block + 128 + 32 * h + l).assumingMemoryBound(to: UInt8.self)
    let shift = UInt8(2 * k)
    qh.pointee = (qh.pointee & ~(3 << shift)) | UInt8(q >> 4) << shift
    return scale * Float(q - 32)
}
