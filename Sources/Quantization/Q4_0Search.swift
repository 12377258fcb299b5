/// Q4_0 with searched scales: still plain Q4_0 blocks (f16 d, x ≈ d·(q - 8)), but each block's d is
/// the weighted least-squares scale of the best of 19 candidate roundings instead of max/-8.
///
/// With importance this is ggml's `quantize_row_q4_0_impl` (what llama-quantize does for Q4_0 given
/// an imatrix): weights importance·sqrt(σ² + x²), σ² = mean(x²) over the whole row. Without
/// importance every element weighs 1, i.e. the plain squared error is minimized (on the trained
/// fixture that beats both ggml's x² weights and sqrt(σ² + x²); a wider candidate range, Lloyd
/// refits and f16-aware re-rounding gained less than 0.2% more, so the search stays ggml's).
enum Q4_0Search {
    static func quantize(_ x: UnsafePointer<Float>, count: Int, importance: UnsafePointer<Float>?,
                         into y: UnsafeMutableRawPointer) {
        let elements = GGMLType.q4_0.blockSize, bytes = GGMLType.q4_0.bytesPerBlock
        var sumX2: Float = 0
        for j in 0..<count { sumX2 += x[j] * x[j] }
        let sigma2 = sumX2 / Float(count)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: elements) { w in
            withUnsafeTemporaryAllocation(of: Int8.self, capacity: elements) { l in
                let weight = w.baseAddress!, L = l.baseAddress!
                for b in 0..<count / elements {
                    let xb = x + b * elements
                    for j in 0..<elements {
                        weight[j] = importance.map { $0[b * elements + j] * (sigma2 + xb[j] * xb[j]).squareRoot() } ?? 1
                    }
                    let d = ScaleSearch.symmetric(elements, nmax: 8, xb, weights: weight, L)
                    let yb = y + b * bytes
                    yb.storeBytes(of: Float16Bits.from(d).littleEndian, as: UInt16.self)
                    let qs = (yb + 2).assumingMemoryBound(to: UInt8.self)
                    for j in 0..<elements / 2 {
                        qs[j] = UInt8(bitPattern: L[j]) | UInt8(bitPattern: L[j + elements / 2]) << 4
                    }
                }
            }
        }
    }
}
