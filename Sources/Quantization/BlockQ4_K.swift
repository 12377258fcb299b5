/// Q4_K: super-blocks of 256 elements as 8 sub-blocks of 32, x ≈ d·sc[j]·q - dmin·m[j], q in 0...15.
/// Layout (144 bytes): f16 d, f16 dmin, 12 bytes of 6-bit sc/m, 128 bytes of nibbles. The 12 scale
/// bytes hold sub-blocks 0-3 in the low 6 bits of bytes 0-3 (sc) and 4-7 (m); sub-blocks 4-7 keep
/// their low 4 bits in bytes 8-11 (sc low nibble, m high nibble) and their top 2 bits in the top
/// bits of bytes 0-3 (sc) and 4-7 (m). Quant byte 32·p + l holds sub-block 2p element l in its low
/// nibble and sub-block 2p+1 element l in its high nibble.
///
/// `quantize` follows ggml's `quantize_row_q4_K_ref` (no importance) and `quantize_row_q4_K_impl`
/// (importance given), which is what llama-quantize writes.
enum BlockQ4_K {
    static let type = GGMLType.q4_K
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
                    quantizeBlock(x + b * elements, importance.map { $0 + b * elements }, y + b * bytes,
                                  weights: weights, scales: scales, mins: mins, sw: sw, L: L, Laux: Laux, Ls: Ls, Lm: Lm)
                }
            }
        }
    }

    private static func quantizeBlock(_ x: UnsafePointer<Float>, _ qw: UnsafePointer<Float>?, _ y: UnsafeMutableRawPointer,
                                      weights: UnsafeMutablePointer<Float>, scales: UnsafeMutablePointer<Float>,
                                      mins: UnsafeMutablePointer<Float>, sw: UnsafeMutablePointer<Float>,
                                      L: UnsafeMutablePointer<UInt8>, Laux: UnsafeMutablePointer<UInt8>,
                                      Ls: UnsafeMutablePointer<UInt8>, Lm: UnsafeMutablePointer<UInt8>) {
        quantizeLevels(x, qw, header: y, nmax: 15, plainSearch: (rmin: -1, rdelta: 0.1, nstep: 20),
                       weights: weights, scales: scales, mins: mins, sw: sw, L: L, Laux: Laux, Ls: Ls, Lm: Lm)
        let qs = (y + 16).assumingMemoryBound(to: UInt8.self)
        for p in 0..<4 {
            for l in 0..<32 { qs[32 * p + l] = L[64 * p + l] | L[64 * p + 32 + l] << 4 }
        }
    }

    /// The part Q4_K and Q5_K share: writes d, dmin and the 12 packed scale bytes at `header` and the
    /// 256 levels in [0, nmax] into `L`. `plainSearch` is the `make_qkx2_quants` search of the
    /// reference quantizer (no importance); with importance both types use the same `make_qkx3_quants`.
    static func quantizeLevels(_ x: UnsafePointer<Float>, _ qw: UnsafePointer<Float>?, header y: UnsafeMutableRawPointer,
                               nmax: Int, plainSearch: (rmin: Float, rdelta: Float, nstep: Int),
                               weights: UnsafeMutablePointer<Float>, scales: UnsafeMutablePointer<Float>,
                               mins: UnsafeMutablePointer<Float>, sw: UnsafeMutablePointer<Float>,
                               L: UnsafeMutablePointer<UInt8>, Laux: UnsafeMutablePointer<UInt8>,
                               Ls: UnsafeMutablePointer<UInt8>, Lm: UnsafeMutablePointer<UInt8>) {
        let packed = (y + 4).assumingMemoryBound(to: UInt8.self)
        for i in 0..<12 { packed[i] = 0 }
        let d: Float, dmin: Float
        if let qw {
            // quantize_row_q4_K_impl: weights qw·sqrt(σ² + x²) with σ² = 2·mean(x²) over the super-block,
            // then the 8 scales and 8 mins themselves quantized to 6 bits by a weighted search.
            var sumX2: Float = 0
            for l in 0..<256 { sumX2 += x[l] * x[l] }
            let sigma2 = 2 * sumX2 / 256
            for j in 0..<subBlocks {
                let xs = x + 32 * j
                for l in 0..<32 { weights[l] = qw[32 * j + l] * (sigma2 + xs[l] * xs[l]).squareRoot() }
                var sumW: Float = 0
                for l in 0..<32 { sumW += weights[l] }
                sw[j] = sumW
                (scales[j], mins[j]) = ScaleSearch.asymmetric(32, nmax: nmax, xs, weights: weights, L + 32 * j, Laux,
                                                              rmin: -0.9, rdelta: 0.05, nstep: 36, variant: .qkx3)
            }
            let dBlock = ScaleSearch.positive(subBlocks, nmax: 63, scales, weights: sw, Ls)
            let mBlock = ScaleSearch.positive(subBlocks, nmax: 63, mins, weights: sw, Lm)
            for j in 0..<subBlocks { pack(j, Ls[j], Lm[j], into: packed) }
            d = dBlock; dmin = mBlock
        } else {
            // quantize_row_q4_K_ref: weights rms(sub-block) + |x|, 6-bit scales by plain rounding.
            var maxScale: Float = 0, maxMin: Float = 0
            for j in 0..<subBlocks {
                let xs = x + 32 * j
                var sumX2: Float = 0
                for l in 0..<32 { sumX2 += xs[l] * xs[l] }
                let avX = (sumX2 / 32).squareRoot()
                for l in 0..<32 { weights[l] = avX + abs(xs[l]) }
                (scales[j], mins[j]) = ScaleSearch.asymmetric(32, nmax: nmax, xs, weights: weights, L + 32 * j, Laux,
                                                              rmin: plainSearch.rmin, rdelta: plainSearch.rdelta,
                                                              nstep: plainSearch.nstep, variant: .qkx2)
                if scales[j] > maxScale { maxScale = scales[j] }
                if mins[j] > maxMin { maxMin = mins[j] }
            }
            let invScale: Float = maxScale > 0 ? 63 / maxScale : 0
            let invMin: Float = maxMin > 0 ? 63 / maxMin : 0
            for j in 0..<subBlocks {
                // C stores nearest_int into a uint8_t before MIN(63, ·): negative values wrap to >= 193.
                let ls = Swift.min(63, UInt8(truncatingIfNeeded: ScaleSearch.nearestInt(invScale * scales[j])))
                let lm = Swift.min(63, UInt8(truncatingIfNeeded: ScaleSearch.nearestInt(invMin * mins[j])))
                pack(j, ls, lm, into: packed)
            }
            d = maxScale / 63; dmin = maxMin / 63
        }
        let dh = Float16Bits.from(d), dminh = Float16Bits.from(dmin)
        y.storeBytes(of: dh.littleEndian, as: UInt16.self)
        y.storeBytes(of: dminh.littleEndian, toByteOffset: 2, as: UInt16.self)
        // Re-quantize every element against the scales as stored (f16 d times 6-bit sc).
        let df = Float16Bits.toFloat(dh), dminf = Float16Bits.toFloat(dminh)
        for j in 0..<subBlocks {
            let (sc, m) = scaleMin(j, packed)
            let dj = df * Float(sc)
            if dj == 0 { continue }
            let dm = dminf * Float(m)
            for i in 0..<32 {
                L[32 * j + i] = UInt8(Swift.max(0, Swift.min(nmax, ScaleSearch.nearestInt((x[32 * j + i] + dm) / dj))))
            }
        }
    }

    /// Stores sub-block j's 6-bit scale and min into the 12 packed bytes (bytes must start zeroed).
    @inline(__always)
    private static func pack(_ j: Int, _ ls: UInt8, _ lm: UInt8, into q: UnsafeMutablePointer<UInt8>) {
        if j < 4 {
            q[j] = ls
            q[j + 4] = lm
        } else {
            q[j + 4] = (ls & 0xf) | (lm & 0xf) << 4
            q[j - 4] |= (ls >> 4) << 6
            q[j] |= (lm >> 4) << 6
        }
    }

    /// ggml's `get_scale_min_k4`: sub-block j's 6-bit scale and min.
    @inline(__always)
    static func scaleMin(_ j: Int, _ q: UnsafePointer<UInt8>) -> (UInt8, UInt8) {
        if j < 4 { return (q[j] & 63, q[j + 4] & 63) }
        return ((q[j + 4] & 0xf) | (q[j - 4] >> 6) << 4, (q[j + 4] >> 4) | (q[j] >> 6) << 4)
    }

    static func dequantize(_ x: UnsafeRawPointer, blocks: Int, into y: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let xb = x + b * bytes
            let d = Float16Bits.toFloat(UInt16(littleEndian: xb.loadUnaligned(as: UInt16.self)))
            let dmin = Float16Bits.toFloat(UInt16(littleEndian: xb.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
            let packed = (xb + 4).assumingMemoryBound(to: UInt8.self)
            let qs = packed + 12
            let yb = y + b * elements
            for p in 0..<4 {
                let (sc0, m0) = scaleMin(2 * p, packed), (sc1, m1) = scaleMin(2 * p + 1, packed)
                let d0 = d * Float(sc0), min0 = dmin * Float(m0)
                let d1 = d * Float(sc1), min1 = dmin * Float(m1)
                for l in 0..<32 {
                    let q = qs[32 * p + l]
                    yb[64 * p + l] = d0 * Float(q & 0xf) - min0
                    yb[64 * p + 32 + l] = d1 * Float(q >> 4) - min1
                }
            }
        }
    }

    /// dot(row, x) = Σ_j d·sc_j·Σ q·x - dmin·m_j·Σ x per sub-block: the quants are summed against x
    /// as small integers in floats (exact), the scales applied once per 32 elements.
    static func dot(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, blocks: Int) -> Float {
        var accQ = SIMD8<Float>.zero, accM = SIMD8<Float>.zero
        let xr = UnsafeRawPointer(x)
        let low = SIMD16<UInt8>(repeating: 0x0f)
        for b in 0..<blocks {
            let rb = row + b * bytes
            let d = Float16Bits.toFloat(UInt16(littleEndian: rb.loadUnaligned(as: UInt16.self)))
            let dmin = Float16Bits.toFloat(UInt16(littleEndian: rb.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
            let packed = (rb + 4).assumingMemoryBound(to: UInt8.self)
            let xb = xr + b * elements * 4
            for p in 0..<4 {
                let (sc0, m0) = scaleMin(2 * p, packed), (sc1, m1) = scaleMin(2 * p + 1, packed)
                let q0 = rb.loadUnaligned(fromByteOffset: 16 + 32 * p, as: SIMD16<UInt8>.self)
                let q1 = rb.loadUnaligned(fromByteOffset: 16 + 32 * p + 16, as: SIMD16<UInt8>.self)
                let x0 = xb + 256 * p, x1 = x0 + 128
                // Sub-block 2p: low nibbles against x0[0..<32]; sub-block 2p+1: high nibbles against x1.
                var s0 = nibbleFloats(q0 & low, 0) * x0.loadUnaligned(as: SIMD8<Float>.self)
                s0 = s0.addingProduct(nibbleFloats(q0 & low, 8), x0.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self))
                s0 = s0.addingProduct(nibbleFloats(q1 & low, 0), x0.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float>.self))
                s0 = s0.addingProduct(nibbleFloats(q1 & low, 8), x0.loadUnaligned(fromByteOffset: 96, as: SIMD8<Float>.self))
                var s1 = nibbleFloats(q0 &>> 4, 0) * x1.loadUnaligned(as: SIMD8<Float>.self)
                s1 = s1.addingProduct(nibbleFloats(q0 &>> 4, 8), x1.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self))
                s1 = s1.addingProduct(nibbleFloats(q1 &>> 4, 0), x1.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float>.self))
                s1 = s1.addingProduct(nibbleFloats(q1 &>> 4, 8), x1.loadUnaligned(fromByteOffset: 96, as: SIMD8<Float>.self))
                let sumX0 = (x0.loadUnaligned(as: SIMD8<Float>.self) + x0.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self))
                    + (x0.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float>.self) + x0.loadUnaligned(fromByteOffset: 96, as: SIMD8<Float>.self))
                let sumX1 = (x1.loadUnaligned(as: SIMD8<Float>.self) + x1.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self))
                    + (x1.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float>.self) + x1.loadUnaligned(fromByteOffset: 96, as: SIMD8<Float>.self))
                accQ = accQ.addingProduct(SIMD8(repeating: d * Float(sc0)), s0)
                accQ = accQ.addingProduct(SIMD8(repeating: d * Float(sc1)), s1)
                accM = accM.addingProduct(SIMD8(repeating: dmin * Float(m0)), sumX0)
                accM = accM.addingProduct(SIMD8(repeating: dmin * Float(m1)), sumX1)
            }
        }
        return accQ.sum() - accM.sum()
    }

}

/// Eight lanes (starting at `start`) of 16 small unsigned quants as floats.
@inline(__always)
func nibbleFloats(_ q: SIMD16<UInt8>, _ start: Int) -> SIMD8<Float> {
    let half = start == 0 ? q.lowHalf : q.highHalf
    return SIMD8<Float>(SIMD8<Int32>(truncatingIfNeeded: half))
}
