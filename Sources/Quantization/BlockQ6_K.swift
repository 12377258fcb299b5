/// Q6_K: super-blocks of 256 elements as 16 groups of 16, x ≈ d·sc[g]·(q - 32), q in 0...63.
/// Layout (210 bytes): 128 bytes ql (low 4 bits), 64 bytes qh (high 2 bits), 16 int8 scales, f16 d.
/// Each half of 128 elements uses 64 ql and 32 qh bytes: for l in 0..<32, ql[l] holds elements l
/// (low nibble) and l+64 (high), ql[l+32] holds l+32 and l+96, and qh[l] holds the top two bits of
/// elements l, l+32, l+64, l+96 at bit 0, 2, 4, 6.
///
/// `quantize` follows ggml's `quantize_row_q6_K_ref` (no importance: group weights x²) and
/// `quantize_row_q6_K_impl` (importance given: the importance itself is the weight).
enum BlockQ6_K {
    static let type = GGMLType.q6_K
    static var elements: Int { type.blockSize }
    static var bytes: Int { type.bytesPerBlock }
    static let groups = 16

    static func quantize(_ x: UnsafePointer<Float>, blocks: Int, importance: UnsafePointer<Float>?,
                         into y: UnsafeMutableRawPointer) {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 16 + groups) { f in
            withUnsafeTemporaryAllocation(of: Int8.self, capacity: 256) { l in
                for b in 0..<blocks {
                    quantizeBlock(x + b * elements, importance.map { $0 + b * elements }, y + b * bytes,
                                  weights: f.baseAddress!, scales: f.baseAddress! + 16, L: l.baseAddress!)
                }
            }
        }
    }

    private static func quantizeBlock(_ x: UnsafePointer<Float>, _ qw: UnsafePointer<Float>?, _ y: UnsafeMutableRawPointer,
                                      weights: UnsafeMutablePointer<Float>, scales: UnsafeMutablePointer<Float>,
                                      L: UnsafeMutablePointer<Int8>) {
        var maxScale: Float = 0, maxAbsScale: Float = 0
        for g in 0..<groups {
            let xg = x + 16 * g
            if let qw {
                for i in 0..<16 { weights[i] = qw[16 * g + i] }
            } else {
                for i in 0..<16 { weights[i] = xg[i] * xg[i] }
            }
            let scale = ScaleSearch.symmetric(16, nmax: 32, xg, weights: weights, L + 16 * g)
            scales[g] = scale
            if abs(scale) > maxAbsScale { maxAbsScale = abs(scale); maxScale = scale }
        }
        let out = y.assumingMemoryBound(to: UInt8.self)
        if maxAbsScale < ScaleSearch.groupMaxEps {
            for i in 0..<bytes { out[i] = 0 }
            return
        }
        let iscale = -128 / maxScale
        let dh = Float16Bits.from(1 / iscale)
        y.storeBytes(of: dh.littleEndian, toByteOffset: 208, as: UInt16.self)
        let sc = (y + 192).assumingMemoryBound(to: Int8.self)
        for g in 0..<groups {
            sc[g] = Int8(truncatingIfNeeded: Swift.min(127, ScaleSearch.nearestInt(iscale * scales[g])))
        }
        // Re-quantize against the stored scales; groups whose stored scale is 0 keep the search's levels.
        let df = Float16Bits.toFloat(dh)
        for g in 0..<groups {
            let d = df * Float(sc[g])
            if d == 0 { continue }
            for i in 0..<16 {
                L[16 * g + i] = Int8(Swift.max(-32, Swift.min(31, ScaleSearch.nearestInt(x[16 * g + i] / d))) + 32)
            }
        }
        let ql = out, qh = out + 128
        for h in 0..<2 {
            let Lh = L + 128 * h, qlh = ql + 64 * h, qhh = qh + 32 * h
            for l in 0..<32 {
                let a = UInt8(Lh[l]), b = UInt8(Lh[l + 32]), c = UInt8(Lh[l + 64]), e = UInt8(Lh[l + 96])
                qlh[l] = (a & 0xf) | (c & 0xf) << 4
                qlh[l + 32] = (b & 0xf) | (e & 0xf) << 4
                qhh[l] = a >> 4 | (b >> 4) << 2 | (c >> 4) << 4 | (e >> 4) << 6
            }
        }
    }

    static func dequantize(_ x: UnsafeRawPointer, blocks: Int, into y: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let xb = x + b * bytes
            let d = Float16Bits.toFloat(UInt16(littleEndian: xb.loadUnaligned(fromByteOffset: 208, as: UInt16.self)))
            let ql = xb.assumingMemoryBound(to: UInt8.self), qh = ql + 128
            let sc = (xb + 192).assumingMemoryBound(to: Int8.self)
            let yb = y + b * elements
            for h in 0..<2 {
                let qlh = ql + 64 * h, qhh = qh + 32 * h, sch = sc + 8 * h, yh = yb + 128 * h
                for l in 0..<32 {
                    let g = l / 16
                    let hb = qhh[l]
                    let q1 = Int((qlh[l] & 0xf) | (hb & 3) << 4) - 32
                    let q2 = Int((qlh[l + 32] & 0xf) | ((hb >> 2) & 3) << 4) - 32
                    let q3 = Int((qlh[l] >> 4) | ((hb >> 4) & 3) << 4) - 32
                    let q4 = Int((qlh[l + 32] >> 4) | ((hb >> 6) & 3) << 4) - 32
                    yh[l] = d * Float(sch[g]) * Float(q1)
                    yh[l + 32] = d * Float(sch[g + 2]) * Float(q2)
                    yh[l + 64] = d * Float(sch[g + 4]) * Float(q3)
                    yh[l + 96] = d * Float(sch[g + 6]) * Float(q4)
                }
            }
        }
    }

    /// dot(row, x): per group of 16, (d·sc)·Σ (q - 32)·x with the quants unpacked to floats 8 at a time.
    static func dot(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, blocks: Int) -> Float {
        var acc0 = SIMD8<Float>.zero, acc1 = SIMD8<Float>.zero
        let xr = UnsafeRawPointer(x)
        let low = SIMD16<UInt8>(repeating: 0x0f), three = SIMD16<UInt8>(repeating: 3)
        let bias = SIMD16<Int8>(repeating: 32)
        for b in 0..<blocks {
            let rb = row + b * bytes
            let d = Float16Bits.toFloat(UInt16(littleEndian: rb.loadUnaligned(fromByteOffset: 208, as: UInt16.self)))
            let sc = (rb + 192).assumingMemoryBound(to: Int8.self)
            for h in 0..<2 {
                let xh = xr + (b * elements + 128 * h) * 4
                for k in 0..<2 {   // l in 16k..<16k+16: groups 8h + k (+2, +4, +6)
                    let o = 16 * k
                    let la = rb.loadUnaligned(fromByteOffset: 64 * h + o, as: SIMD16<UInt8>.self)
                    let lb = rb.loadUnaligned(fromByteOffset: 64 * h + 32 + o, as: SIMD16<UInt8>.self)
                    let hb = rb.loadUnaligned(fromByteOffset: 128 + 32 * h + o, as: SIMD16<UInt8>.self)
                    let q1 = SIMD16<Int8>(truncatingIfNeeded: (la & low) | (hb & three) &<< 4) &- bias
                    let q2 = SIMD16<Int8>(truncatingIfNeeded: (lb & low) | ((hb &>> 2) & three) &<< 4) &- bias
                    let q3 = SIMD16<Int8>(truncatingIfNeeded: (la &>> 4) | ((hb &>> 4) & three) &<< 4) &- bias
                    let q4 = SIMD16<Int8>(truncatingIfNeeded: (lb &>> 4) | ((hb &>> 6) & three) &<< 4) &- bias
                    let s1 = group(q1, xh + 4 * o), s2 = group(q2, xh + 4 * (o + 32))
                    let s3 = group(q3, xh + 4 * (o + 64)), s4 = group(q4, xh + 4 * (o + 96))
                    let g = 8 * h + k
                    acc0 = acc0.addingProduct(SIMD8(repeating: d * Float(sc[g])), s1)
                    acc1 = acc1.addingProduct(SIMD8(repeating: d * Float(sc[g + 2])), s2)
                    acc0 = acc0.addingProduct(SIMD8(repeating: d * Float(sc[g + 4])), s3)
                    acc1 = acc1.addingProduct(SIMD8(repeating: d * Float(sc[g + 6])), s4)
                }
            }
        }
        return (acc0 + acc1).sum()
    }

    @inline(__always)
    private static func group(_ q: SIMD16<Int8>, _ x: UnsafeRawPointer) -> SIMD8<Float> {
        (floats(q.lowHalf) * x.loadUnaligned(as: SIMD8<Float>.self))
            .addingProduct(floats(q.highHalf), x.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self))
    }

}
