/// IQ4_NL: blocks of 32 elements, x ≈ d·kvalues[q], with ggml's non-linear 4-bit grid. Layout
/// (18 bytes) as Q4_0: f16 d, then byte j holds element j (low nibble) and j + 16 (high nibble).
///
/// `quantize` follows ggml's `quantize_iq4_nl` (what llama-quantize writes, with or without
/// importance): weighted least-squares scale over 15 candidate inverse scales, weights x² or
/// importance·sqrt(σ² + x²). The nearest grid value is found as ggml's `best_index_int8` does,
/// comparing the two float distances (ties go to the upper value).
enum BlockIQ4_NL {
    static let type = GGMLType.iq4_nl
    static var elements: Int { type.blockSize }
    static var bytes: Int { type.bytesPerBlock }

    /// ggml's `kvalues_iq4nl`.
    static let values: [Int8] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]
    /// The grid as floats, for the dot kernel and the dequantizer.
    static let floatValues: [Float] = values.map { Float($0) }

    static func quantize(_ x: UnsafePointer<Float>, blocks: Int, importance: UnsafePointer<Float>?,
                         into y: UnsafeMutableRawPointer) {
        floatValues.withUnsafeBufferPointer { v in
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 32) { w in
                withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 32) { l in
                    for b in 0..<blocks {
                        quantizeBlock(x + b * elements, importance.map { $0 + b * elements }, y + b * bytes,
                                      values: v.baseAddress!, weight: w.baseAddress!, L: l.baseAddress!)
                    }
                }
            }
        }
    }

    private static func quantizeBlock(_ x: UnsafePointer<Float>, _ qw: UnsafePointer<Float>?, _ y: UnsafeMutableRawPointer,
                                      values: UnsafePointer<Float>, weight: UnsafeMutablePointer<Float>,
                                      L: UnsafeMutablePointer<UInt8>) {
        var sigma2: Float = 0
        for j in 0..<32 { sigma2 += x[j] * x[j] }
        sigma2 *= (2 as Float) / 32
        if let qw {
            for j in 0..<32 { weight[j] = qw[j] * (sigma2 + x[j] * x[j]).squareRoot() }
        } else {
            for j in 0..<32 { weight[j] = x[j] * x[j] }
        }
        let d = searchScale(x, weight: weight, values: values)
        y.storeBytes(of: Float16Bits.from(d).littleEndian, as: UInt16.self)
        // Final levels against the unrounded f32 scale, as ggml does.
        let id: Float = d != 0 ? 1 / d : 0
        for j in 0..<32 { L[j] = UInt8(bestIndex(values, id * x[j])) }
        let qs = (y + 2).assumingMemoryBound(to: UInt8.self)
        for j in 0..<16 { qs[j] = L[j] | L[j + 16] << 4 }
    }

    /// The scale search of ggml's `quantize_row_iq4_nl_impl` for one block of 32 (shared with IQ4_XS):
    /// the weighted least-squares scale for the grid placed at -max/v0, then at 15 nearby inverse
    /// scales, the best kept. 0 for a block whose largest magnitude is below GROUP_MAX_EPS.
    static func searchScale(_ x: UnsafePointer<Float>, weight: UnsafePointer<Float>, values: UnsafePointer<Float>) -> Float {
        let ntry = 7
        var amax: Float = 0, max: Float = 0
        for j in 0..<32 {
            let ax = abs(x[j])
            if ax > amax { amax = ax; max = x[j] }
        }
        guard amax >= ScaleSearch.groupMaxEps else { return 0 }
        var d = -max / values[0]
        var id = 1 / d
        var sumqx: Float = 0, sumq2: Float = 0
        for j in 0..<32 {
            let q = values[bestIndex(values, id * x[j])]
            sumqx += weight[j] * q * x[j]
            sumq2 += weight[j] * q * q
        }
        d = sumq2 > 0 ? sumqx / sumq2 : 0
        var best = d * sumqx
        for itry in -ntry...ntry {
            id = Float(itry + Int(values[0])) / max   // C: (int + int8) / float
            sumqx = 0; sumq2 = 0
            for j in 0..<32 {
                let q = values[bestIndex(values, id * x[j])]
                sumqx += weight[j] * q * x[j]
                sumq2 += weight[j] * q * q
            }
            if sumq2 > 0 && sumqx * sumqx > best * sumq2 {
                d = sumqx / sumq2
                best = d * sumqx
            }
        }
        return d
    }

    /// ggml's `best_index_int8` over the sorted 16-value grid: clamp to the ends, bisect, then pick
    /// the nearer neighbour by float distance, the upper one on ties; NaN lands on the last value.
    /// Computed without branches: the bisection's answer is the number of neighbour pairs (v_k, v_k+1)
    /// for which `x - v_k < v_k+1 - x` is false, because that float comparison is monotone in x
    /// (and false throughout for NaN).
    @inline(__always)
    static func bestIndex(_ grid: UnsafePointer<Float>, _ x: Float) -> Int {
        var n = 0
        for k in 0..<15 { n += x - grid[k] < grid[k + 1] - x ? 0 : 1 }
        return n
    }

    /// The scalar bisection exactly as ggml writes it, the reference for `bestIndex`.
    static func referenceBestIndex(_ val: UnsafePointer<Int8>, _ x: Float) -> Int {
        if x <= Float(val[0]) { return 0 }
        if x >= Float(val[15]) { return 15 }
        var ml = 0, mu = 15
        while mu - ml > 1 {
            let mav = (ml + mu) / 2
            if x < Float(val[mav]) { mu = mav } else { ml = mav }
        }
        return x - Float(val[mu - 1]) < Float(val[mu]) - x ? mu - 1 : mu
    }

    static func dequantize(_ x: UnsafeRawPointer, blocks: Int, into y: UnsafeMutablePointer<Float>) {
        floatValues.withUnsafeBufferPointer { kv in
            for b in 0..<blocks {
                let xb = x + b * bytes
                let d = Float16Bits.toFloat(UInt16(littleEndian: xb.loadUnaligned(as: UInt16.self)))
                let yb = y + b * elements
                for j in 0..<16 {
                    let byte = xb.load(fromByteOffset: 2 + j, as: UInt8.self)
                    yb[j] = d * kv[Int(byte & 0xf)]
                    yb[j + 16] = d * kv[Int(byte >> 4)]
                }
            }
        }
    }

    /// dot(row, x): the grid values gathered into 8-lane float vectors, d applied per block, two
    /// block accumulators.
    static func dot(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, blocks: Int) -> Float {
        var acc0 = SIMD8<Float>.zero, acc1 = SIMD8<Float>.zero
        let xr = UnsafeRawPointer(x)
        return floatValues.withUnsafeBufferPointer { kvb in
            let kv = kvb.baseAddress!
            @inline(__always) func gather(_ q: UnsafeRawPointer, _ shift: UInt8) -> SIMD8<Float> {
                var v = SIMD8<Float>()
                for i in 0..<8 { v[i] = kv[Int((q.load(fromByteOffset: i, as: UInt8.self) >> shift) & 0xf)] }
                return v
            }
            for b in 0..<blocks {
                let rb = row + b * bytes
                let d = SIMD8<Float>(repeating: Float16Bits.toFloat(UInt16(littleEndian: rb.loadUnaligned(as: UInt16.self))))
                let q = rb + 2
                let xb = xr + b * elements * 4
                let s0 = (gather(q, 0) * xb.loadUnaligned(as: SIMD8<Float>.self))
                    .addingProduct(gather(q + 8, 0), xb.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self))
                let s1 = (gather(q, 4) * xb.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float>.self))
                    .addingProduct(gather(q + 8, 4), xb.loadUnaligned(fromByteOffset: 96, as: SIMD8<Float>.self))
                acc0 = acc0.addingProduct(d, s0)
                acc1 = acc1.addingProduct(d, s1)
            }
            return (acc0 + acc1).sum()
        }
    }

    /// Plain scalar dot, the reference for `dot`.
    static func referenceDot(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, blocks: Int) -> Float {
        var total: Float = 0
        for b in 0..<blocks {
            let rb = row + b * bytes
            let d = Float16Bits.toFloat(UInt16(littleEndian: rb.loadUnaligned(as: UInt16.self)))
            var sum: Float = 0
            for j in 0..<16 {
                let byte = rb.load(fromByteOffset: 2 + j, as: UInt8.self)
                sum += floatValues[Int(byte & 0xf)] * x[b * 32 + j]
                sum += floatValues[Int(byte >> 4)] * x[b * 32 + j + 16]
            }
            total += d * sum
        }
        return total
    }
}
