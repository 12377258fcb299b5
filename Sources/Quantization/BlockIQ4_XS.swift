/// IQ4_XS: IQ4_NL's non-linear grid with 6-bit block scales under one f16 super-block scale.
/// Super-blocks of 256 as 8 blocks of 32, x ≈ d·(ls[ib] - 32)·kvalues[q]. Layout (136 bytes): f16 d,
/// u16 scales_h (2 high bits of block ib's scale at bit 2·ib), 4 bytes scales_l (block ib's low 4
/// bits in the low nibble of byte ib/2 for even ib, the high nibble for odd), then 8 × 16 bytes of
/// nibbles laid out as IQ4_NL's (byte j of block ib: element j low, element j + 16 high).
///
/// `quantize` follows ggml's `quantize_iq4_xs` (what llama-quantize writes, with or without
/// importance): `quantize_row_iq4_nl_impl` over a 256 super-block, i.e. IQ4_NL's scale search per
/// block of 32 (weights x², or importance·sqrt(σ² + x²) with σ² over the super-block), the block
/// scales rounded to 6 bits against d = -max/32, and the levels re-picked against the rounded scales.
enum BlockIQ4_XS {
    static let type = GGMLType.iq4_xs
    static var elements: Int { type.blockSize }
    static var bytes: Int { type.bytesPerBlock }
    static let blocksPerSuper = 8

    static func quantize(_ x: UnsafePointer<Float>, blocks: Int, importance: UnsafePointer<Float>?,
                         into y: UnsafeMutableRawPointer) {
        BlockIQ4_NL.floatValues.withUnsafeBufferPointer { v in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 32 + blocksPerSuper) { f in
                withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 256) { l in
                    for b in 0..<blocks {
                        quantizeBlock(x + b * elements, importance.map { $0 + b * elements }, y + b * bytes,
                                      values: v.baseAddress!, weight: f.baseAddress!, scales: f.baseAddress! + 32,
                                      L: l.baseAddress!)
                    }
                }
            }
        }
    }

    private static func quantizeBlock(_ x: UnsafePointer<Float>, _ qw: UnsafePointer<Float>?, _ y: UnsafeMutableRawPointer,
                                      values: UnsafePointer<Float>, weight: UnsafeMutablePointer<Float>,
                                      scales: UnsafeMutablePointer<Float>, L: UnsafeMutablePointer<UInt8>) {
        var sigma2: Float = 0
        for j in 0..<256 { sigma2 += x[j] * x[j] }
        sigma2 *= (2 as Float) / 256
        var maxScale: Float = 0, amaxScale: Float = 0
        for ib in 0..<blocksPerSuper {
            let xb = x + 32 * ib
            if let qw {
                for j in 0..<32 { weight[j] = qw[32 * ib + j] * (sigma2 + xb[j] * xb[j]).squareRoot() }
            } else {
                for j in 0..<32 { weight[j] = xb[j] * xb[j] }
            }
            scales[ib] = BlockIQ4_NL.searchScale(xb, weight: weight, values: values)
            if abs(scales[ib]) > amaxScale { amaxScale = abs(scales[ib]); maxScale = scales[ib] }
        }
        // d = -max/32 (an all-zero super-block stores -0), block scales as 6-bit multiples of the
        // unrounded d, levels against each block's d·l.
        let d = -maxScale / 32
        y.storeBytes(of: Float16Bits.from(d).littleEndian, as: UInt16.self)
        let id: Float = d != 0 ? 1 / d : 0
        var scalesH: UInt16 = 0
        let scalesL = (y + 4).assumingMemoryBound(to: UInt8.self)
        for ib in 0..<blocksPerSuper {
            let l = Swift.max(-32, Swift.min(31, ScaleSearch.nearestInt(id * scales[ib])))
            let dl = d * Float(l)
            let idl: Float = dl != 0 ? 1 / dl : 0
            for j in 0..<32 { L[32 * ib + j] = UInt8(BlockIQ4_NL.bestIndex(values, idl * x[32 * ib + j])) }
            let stored = UInt8(l + 32)
            if ib % 2 == 0 { scalesL[ib / 2] = stored & 0xf } else { scalesL[ib / 2] |= (stored & 0xf) << 4 }
            scalesH |= UInt16(stored >> 4) << (2 * ib)
        }
        y.storeBytes(of: scalesH.littleEndian, toByteOffset: 2, as: UInt16.self)
        let qs = (y + 8).assumingMemoryBound(to: UInt8.self)
        for ib in 0..<blocksPerSuper {
            for j in 0..<16 { qs[16 * ib + j] = L[32 * ib + j] | L[32 * ib + 16 + j] << 4 }
        }
    }

    /// Block ib's 6-bit scale as stored (0...63; the value used is this minus 32).
    @inline(__always)
    static func scale(_ ib: Int, _ xb: UnsafeRawPointer) -> Int {
        let high = UInt16(littleEndian: xb.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
        let low = xb.load(fromByteOffset: 4 + ib / 2, as: UInt8.self) >> (4 * (ib % 2)) & 0xf
        return Int(low) | Int((high >> (2 * ib)) & 3) << 4
    }

    static func dequantize(_ x: UnsafeRawPointer, blocks: Int, into y: UnsafeMutablePointer<Float>) {
        BlockIQ4_NL.floatValues.withUnsafeBufferPointer { kv in
            for b in 0..<blocks {
                let xb = x + b * bytes
                let d = Float16Bits.toFloat(UInt16(littleEndian: xb.loadUnaligned(as: UInt16.self)))
                for ib in 0..<blocksPerSuper {
                    let dl = d * Float(scale(ib, xb) - 32)
                    let yb = y + b * elements + 32 * ib
                    for j in 0..<16 {
                        let byte = xb.load(fromByteOffset: 8 + 16 * ib + j, as: UInt8.self)
                        yb[j] = dl * kv[Int(byte & 0xf)]
                        yb[j + 16] = dl * kv[Int(byte >> 4)]
                    }
                }
            }
        }
    }

    /// dot(row, x) through the block-wise expansion (the fused kernels in CKernels are the fast path).
    static func dot(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, blocks: Int) -> Float {
        blockwiseDot(row, x, blocks: blocks, type: type, dequantize: dequantize)
    }
}
