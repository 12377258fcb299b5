/// Q3_K: super-blocks of 256 elements as 16 groups of 16, x ≈ d·(sc[g] - 32)·(q - 4), q in 0...7.
/// Layout (110 bytes): 32 bytes hmask, 64 bytes qs, 12 bytes of 6-bit scales, f16 d.
/// Element e keeps its low 2 bits in qs[32·(e/128) + e%32] at bit 2·((e%128)/32) and its third bit
/// in hmask[e%32] at bit e/32 (a set bit means q ≥ 4). Group g's 6-bit scale keeps its low 4 bits in
/// the low (g < 8) or high (g ≥ 8) nibble of byte g%8 and its top 2 bits in byte 8 + g%4 at bit 2·(g/4).
///
/// `quantize` follows ggml's `quantize_row_q3_K_ref` (no importance: `make_q3_quants` per group, the
/// scales rounded against the largest) and `quantize_row_q3_K_impl` (importance given: weighted
/// `make_qx_quants` for the groups and again for their 16 scales).
enum BlockQ3_K {
    static let type = GGMLType.q3_K
    static var elements: Int { type.blockSize }
    static var bytes: Int { type.bytesPerBlock }
    static let groups = 16

    static func quantize(_ x: UnsafePointer<Float>, blocks: Int, importance: UnsafePointer<Float>?,
                         into y: UnsafeMutableRawPointer) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 16 + 2 * groups) { f in
            withUnsafeTemporaryAllocation(of: Int8.self, capacity: 256 + groups) { l in
                for b in 0..<blocks {
                    quantizeBlock(x + b * elements, importance.map { $0 + b * elements }, y + b * bytes,
                                  weights: f.baseAddress!, scales: f.baseAddress! + 16, sw: f.baseAddress! + 16 + groups,
                                  L: l.baseAddress!, Ls: l.baseAddress! + 256)
                }
            }
        }
    }

    private static func quantizeBlock(_ x: UnsafePointer<Float>, _ qw: UnsafePointer<Float>?, _ y: UnsafeMutableRawPointer,
                                      weights: UnsafeMutablePointer<Float>, scales: UnsafeMutablePointer<Float>,
                                      sw: UnsafeMutablePointer<Float>, L: UnsafeMutablePointer<Int8>,
                                      Ls: UnsafeMutablePointer<Int8>) {
        let out = y.assumingMemoryBound(to: UInt8.self)
        let hmask = out, qs = out + 32, packed = out + 96
        for i in 0..<12 { packed[i] = 0 }
        let d: Float
        if let qw {
            var sumX2: Float = 0
            for j in 0..<256 { sumX2 += x[j] * x[j] }
            let sigma2 = 2 * sumX2 / 256
            for g in 0..<groups {
                let xg = x + 16 * g
                for l in 0..<16 { weights[l] = qw[16 * g + l] * (sigma2 + xg[l] * xg[l]).squareRoot() }
                var sumW: Float = 0
                for l in 0..<16 { sumW += weights[l] }
                sw[g] = sumW
                scales[g] = ScaleSearch.symmetric(16, nmax: 4, xg, weights: weights, L + 16 * g)
            }
            d = ScaleSearch.symmetric(groups, nmax: 32, scales, weights: sw, Ls)
            for g in 0..<groups { pack(g, Int(Ls[g]), into: packed) }
        } else {
            var maxScale: Float = 0, amax: Float = 0
            for g in 0..<groups {
                scales[g] = ScaleSearch.symmetricRefined(16, nmax: 4, x + 16 * g, L + 16 * g)
                if abs(scales[g]) > amax { amax = abs(scales[g]); maxScale = scales[g] }
            }
            if maxScale != 0 {
                let iscale = -32 / maxScale
                for g in 0..<groups {
                    // C: int8_t l = nearest_int(·), then clamped to [-32, 31] and offset by 32.
                    let l = Int(Int8(truncatingIfNeeded: ScaleSearch.nearestInt(iscale * scales[g])))
                    pack(g, Swift.max(-32, Swift.min(31, l)) + 32, into: packed)
                }
                d = 1 / iscale
            } else {
                d = 0
            }
        }
        let dh = Float16Bits.from(d)
        y.storeBytes(of: dh.littleEndian, toByteOffset: 108, as: UInt16.self)
        // Re-quantize against the stored scales; groups whose stored scale is 0 keep the search's levels.
        let df = Float16Bits.toFloat(dh)
        for g in 0..<groups {
            let dg = df * Float(scale(g, packed) - 32)
            if dg == 0 { continue }
            for i in 0..<16 {
                L[16 * g + i] = Int8(Swift.max(-4, Swift.min(3, ScaleSearch.nearestInt(x[16 * g + i] / dg))) + 4)
            }
        }
        for i in 0..<32 { hmask[i] = 0 }
        for e in 0..<256 where L[e] > 3 {
            hmask[e % 32] |= UInt8(1) << (e / 32)
            L[e] -= 4
        }
        for h in 0..<2 {
            let Lh = L + 128 * h
            for l in 0..<32 {
                qs[32 * h + l] = UInt8(Lh[l]) | UInt8(Lh[l + 32]) << 2 | UInt8(Lh[l + 64]) << 4 | UInt8(Lh[l + 96]) << 6
            }
        }
    }

    /// Stores group g's 6-bit scale `l` (0...63) into the 12 packed bytes (bytes must start zeroed).
    @inline(__always)
    private static func pack(_ g: Int, _ l: Int, into q: UnsafeMutablePointer<UInt8>) {
        let low = UInt8(l & 0xf), high = UInt8((l >> 4) & 3)
        if g < 8 { q[g] = low } else { q[g - 8] |= low << 4 }
        q[8 + g % 4] |= high << (2 * (g / 4))
    }

    /// Group g's 6-bit scale as stored (0...63; the value used is this minus 32).
    @inline(__always)
    static func scale(_ g: Int, _ q: UnsafePointer<UInt8>) -> Int {
        let low = g < 8 ? q[g] & 0xf : q[g - 8] >> 4
        return Int(low | ((q[8 + g % 4] >> (2 * (g / 4))) & 3) << 4)
    }

    static func dequantize(_ x: UnsafeRawPointer, blocks: Int, into y: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let xb = x + b * bytes
            let d = Float16Bits.toFloat(UInt16(littleEndian: xb.loadUnaligned(fromByteOffset: 108, as: UInt16.self)))
            let q = xb.assumingMemoryBound(to: UInt8.self)
            let hmask = q, qs = q + 32, packed = q + 96
            let yb = y + b * elements
            for g in 0..<groups {
                let dl = d * Float(scale(g, packed) - 32)
                for i in 0..<16 {
                    let e = 16 * g + i
                    let low = Int((qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3)
                    let high = hmask[e % 32] >> (e / 32) & 1
                    yb[e] = dl * Float(low - (high != 0 ? 0 : 4))
                }
            }
        }
    }

    /// dot(row, x) through the block-wise expansion (the fused kernels in CKernels are the fast path).
    static func dot(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, blocks: Int) -> Float {
        blockwiseDot(row, x, blocks: blocks, type: type, dequantize: dequantize)
    }
}
