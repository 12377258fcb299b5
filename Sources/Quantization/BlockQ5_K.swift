/// Q5_K: Q4_K with a fifth bit. Super-blocks of 256 elements as 8 sub-blocks of 32,
/// x ≈ d·sc[j]·q - dmin·m[j], q in 0...31. Layout (176 bytes): f16 d, f16 dmin, the 12 scale bytes
/// packed exactly as Q4_K's, 32 bytes qh, 128 bytes ql. Element 64·p + l (l < 32) has its low 4 bits
/// in the low nibble of ql[32·p + l] and its fifth bit at bit 2p of qh[l]; element 64·p + 32 + l uses
/// the high nibble of the same ql byte and bit 2p + 1 of qh[l].
///
/// `quantize` follows ggml's `quantize_row_q5_K_ref` (no importance) and `quantize_row_q5_K_impl`
/// (importance given): the same scale searches as Q4_K with 31 levels (the reference search tries
/// 16 candidates from rmin -0.5 instead of Q4_K's 21 from -1).
enum BlockQ5_K {
    static let type = GGMLType.q5_K
    static var elements: Int { type.blockSize }
    static var bytes: Int { type.bytesPerBlock }
    static let subBlocks = 8

    static func quantize(_ x: UnsafePointer<Float>, blocks: Int, importance: UnsafePointer<Float>?,
                         into y: UnsafeMutableRawPointer) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 32 + 3 * subBlocks) { f in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256 + 32 + 2 * subBlocks) { u in
                let weights = f.baseAddress!, scales = weights + 32, mins = scales + subBlocks, sw = mins + subBlocks
                let L = u.baseAddress!, Laux = L + 256, Ls = Laux + 32, Lm = Ls + subBlocks
                for b in 0..<blocks {
                    let yb = y + b * bytes
                    BlockQ4_K.quantizeLevels(x + b * elements, importance.map { $0 + b * elements }, header: yb, nmax: 31,
                                             plainSearch: (rmin: -0.5, rdelta: 0.1, nstep: 15), weights: weights,
                                             scales: scales, mins: mins, sw: sw, L: L, Laux: Laux, Ls: Ls, Lm: Lm)
                    let qh = (yb + 16).assumingMemoryBound(to: UInt8.self), ql = qh + 32
                    for i in 0..<32 { qh[i] = 0 }
                    for p in 0..<4 {
                        let m1 = UInt8(1) << (2 * p), m2 = UInt8(2) << (2 * p)
                        for j in 0..<32 {
                            var l1 = L[64 * p + j], l2 = L[64 * p + 32 + j]
                            if l1 > 15 { l1 -= 16; qh[j] |= m1 }
                            if l2 > 15 { l2 -= 16; qh[j] |= m2 }
                            ql[32 * p + j] = l1 | l2 << 4
                        }
                    }
                }
            }
        }
    }

    static func dequantize(_ x: UnsafeRawPointer, blocks: Int, into y: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let xb = x + b * bytes
            let d = Float16Bits.toFloat(UInt16(littleEndian: xb.loadUnaligned(as: UInt16.self)))
            let dmin = Float16Bits.toFloat(UInt16(littleEndian: xb.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
            let packed = (xb + 4).assumingMemoryBound(to: UInt8.self)
            let qh = packed + 12, ql = qh + 32
            let yb = y + b * elements
            for p in 0..<4 {
                let (sc0, m0) = BlockQ4_K.scaleMin(2 * p, packed), (sc1, m1) = BlockQ4_K.scaleMin(2 * p + 1, packed)
                let d0 = d * Float(sc0), min0 = dmin * Float(m0)
                let d1 = d * Float(sc1), min1 = dmin * Float(m1)
                let u1 = UInt8(1) << (2 * p), u2 = UInt8(2) << (2 * p)
                for l in 0..<32 {
                    let q = ql[32 * p + l], h = qh[l]
                    yb[64 * p + l] = d0 * Float((q & 0xf) | (h & u1 != 0 ? 16 : 0)) - min0
                    yb[64 * p + 32 + l] = d1 * Float((q >> 4) | (h & u2 != 0 ? 16 : 0)) - min1
                }
            }
        }
    }

    /// dot(row, x): each block expanded to floats, then an 8-lane dot (the fused integer kernels in
    /// CKernels are the fast path; this one serves the float fallback and tests).
    static func dot(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, blocks: Int) -> Float {
        blockwiseDot(row, x, blocks: blocks, type: type, dequantize: dequantize)
    }
}

/// dot(row, x) for a super-block type by expanding one block at a time into a stack buffer.
func blockwiseDot(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, blocks: Int, type: GGMLType,
                  dequantize: (UnsafeRawPointer, Int, UnsafeMutablePointer<Float>) -> Void) -> Float {
    let n = type.blockSize
    return withUnsafeTemporaryAllocation(of: Float.self, capacity: n) { w in
        let wb = UnsafeRawPointer(w.baseAddress!), xr = UnsafeRawPointer(x)
        var acc0 = SIMD8<Float>.zero, acc1 = SIMD8<Float>.zero
        for b in 0..<blocks {
            dequantize(row + b * type.bytesPerBlock, 1, w.baseAddress!)
            let xb = xr + b * n * 4
            for i in stride(from: 0, to: n, by: 16) {
                acc0 = acc0.addingProduct(wb.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self),
                                          xb.loadUnaligned(fromByteOffset: 4 * i, as: SIMD8<Float>.self))
                acc1 = acc1.addingProduct(wb.loadUnaligned(fromByteOffset: 4 * i + 32, as: SIMD8<Float>.self),
                                          xb.loadUnaligned(fromByteOffset: 4 * i + 32, as: SIMD8<Float>.self))
            }
        }
        return (acc0 + acc1).sum()
    }
}
