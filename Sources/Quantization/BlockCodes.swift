// Element-wise access to the codes of an already-encoded block: given the block's scales (as ggml's
// quantizer chose them), set one element's code to the representable value nearest a target. This is
// what error-compensating rounding (GPTQ) needs: the scales of a block are chosen once, then each
// column's code is picked after the error of the previous columns has been fed forward.

/// Types whose element codes `roundElement` can set: every block type but Q8_0 (whose plain rounding
/// is already within the activations' int8 error).
public func supportsElementRounding(_ type: GGMLType) -> Bool {
    switch type {
    case .q4_0, .iq4_nl, .q4_K, .q6_K, .iq4_xs, .q5_K, .q3_K: return true
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
    case .iq4_xs: return roundIQ4_XS(block, index, target)
    case .q5_K: return roundQ5_K(block, index, target)
    case .q3_K: return roundQ3_K(block, index, target)
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
    let best = nearestGridCode(d, target)
    setNibble((block + 2 + i % 16).assumingMemoryBound(to: UInt8.self), high: i >= 16, UInt8(best))
    return d * BlockIQ4_NL.floatValues[best]
}

/// The index of IQ4_NL's grid value v minimising |scale·v - target| (8, a zero, when scale is 0).
@inline(__always)
private func nearestGridCode(_ scale: Float, _ target: Float) -> Int {
    var best = 8, bestError = Float.infinity
    if scale != 0 {
        for (q, v) in BlockIQ4_NL.floatValues.enumerated() {
            let e = abs(scale * v - target)
            if e < bestError { bestError = e; best = q }
        }
    }
    return best
}

/// IQ4_XS: x = d·(ls[ib] - 32)·kvalues[q] for block ib = i / 32; nibbles laid out as IQ4_NL's per block.
private func roundIQ4_XS(_ block: UnsafeMutableRawPointer, _ i: Int, _ target: Float) -> Float {
    let d = Float16Bits.toFloat(UInt16(littleEndian: block.loadUnaligned(as: UInt16.self)))
    let ib = i / 32, j = i % 32
    let dl = d * Float(BlockIQ4_XS.scale(ib, UnsafeRawPointer(block)) - 32)
    let best = nearestGridCode(dl, target)
    setNibble((block + 8 + 16 * ib + j % 16).assumingMemoryBound(to: UInt8.self), high: j >= 16, UInt8(best))
    return dl * BlockIQ4_NL.floatValues[best]
}

/// Q5_K: x = d·sc[j]·q - dmin·m[j], q 5-bit: low 4 bits in ql (nibble by sub-block parity), the fifth
/// in qh[i % 32] at bit j.
private func roundQ5_K(_ block: UnsafeMutableRawPointer, _ i: Int, _ target: Float) -> Float {
    let d = Float16Bits.toFloat(UInt16(littleEndian: block.loadUnaligned(as: UInt16.self)))
    let dmin = Float16Bits.toFloat(UInt16(littleEndian: block.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
    let j = i / 32, l = i % 32
    let (sc, m) = BlockQ4_K.scaleMin(j, UnsafePointer((block + 4).assumingMemoryBound(to: UInt8.self)))
    let dj = d * Float(sc), dm = dmin * Float(m)
    let q = dj == 0 ? 0 : clampedCode((target + dm) / dj, 31)
    let ql = (block + 48 + 32 * (j / 2) + l).assumingMemoryBound(to: UInt8.self)
    setNibble(ql, high: j % 2 == 1, UInt8(q & 0xf))
    let qh = (block + 16 + l).assumingMemoryBound(to: UInt8.self)
    qh.pointee = (qh.pointee & ~(UInt8(1) << j)) | UInt8(q >> 4) << j
    return dj * Float(q) - dm
}

/// Q3_K: x = d·(sc[g] - 32)·(q - 4), 16-element groups; low 2 bits in qs, the third in hmask.
private func roundQ3_K(_ block: UnsafeMutableRawPointer, _ e: Int, _ target: Float) -> Float {
    let d = Float16Bits.toFloat(UInt16(littleEndian: block.loadUnaligned(fromByteOffset: 108, as: UInt16.self)))
    let bytes = block.assumingMemoryBound(to: UInt8.self)
    let dl = d * Float(BlockQ3_K.scale(e / 16, UnsafePointer(bytes + 96)) - 32)
    let q = dl == 0 ? 4 : clampedCode(target / dl + 4, 7)
    let qs = bytes + 32 + 32 * (e / 128) + e % 32, shift = UInt8(2 * ((e % 128) / 32))
    qs.pointee = (qs.pointee & ~(3 << shift)) | UInt8(q & 3) << shift
    let hmask = bytes + e % 32, bit = UInt8(1) << UInt8(e / 32)
    hmask.pointee = q >= 4 ? hmask.pointee | bit : hmask.pointee & ~bit
    return dl * Float(q - 4)
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
