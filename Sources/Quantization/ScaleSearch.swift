/// The scale searches behind ggml's k-quant and non-linear quantizers (ggml-quants.c), written from
/// their description so that our blocks equal ggml's byte for byte.
///
/// Float expressions keep C's evaluation order and roundings (`w*x*l` is `(w*x)*l`, no fused
/// multiply-adds, divisions stay divisions): one different rounding changes a scale candidate and
/// with it a whole block.
enum ScaleSearch {
    /// ggml's GROUP_MAX_EPS: groups whose largest magnitude is below it quantize to zero.
    static let groupMaxEps: Float = 1e-15

    /// ggml's `nearest_int`: round half to even (its add-1.5·2²³ trick). The C asserts |v| ≤ 4194303
    /// and is undefined beyond; NaN becomes 0 and the range is clamped so that nothing traps.
    @inline(__always)
    static func nearestInt(_ v: Float) -> Int {
        guard v == v else { return 0 }
        return Int(Rounding.halfToEvenSmall(Swift.max(-4_194_304, Swift.min(4_194_303, v))))
    }

    /// `make_qx_quants` with `rmse_type` 1: symmetric quants in [-nmax, nmax-1] (stored with +nmax in
    /// `L`), the largest magnitude first mapped to -nmax, then 18 nearby inverse scales tried and the
    /// weighted least-squares scale of the best kept. Returns the scale (0 for an all-zero group).
    static func symmetric(_ n: Int, nmax: Int, _ x: UnsafePointer<Float>, weights w: UnsafePointer<Float>,
                          _ L: UnsafeMutablePointer<Int8>) -> Float {
        var max: Float = 0, amax: Float = 0
        for i in 0..<n {
            let ax = abs(x[i])
            if ax > amax { amax = ax; max = x[i] }
        }
        if amax < groupMaxEps {
            for i in 0..<n { L[i] = 0 }
            return 0
        }
        let fmax = Float(nmax)
        @inline(__always) func level(_ iscale: Float, _ i: Int) -> Int {
            Swift.max(-nmax, Swift.min(nmax - 1, nearestInt(iscale * x[i])))
        }
        var iscale = Float(-nmax) / max
        var sumlx: Float = 0, suml2: Float = 0
        for i in 0..<n {
            let l = level(iscale, i)
            L[i] = Int8(truncatingIfNeeded: l + nmax)
            sumlx += w[i] * x[i] * Float(l)
            suml2 += w[i] * Float(l) * Float(l)
        }
        var scale: Float = suml2 != 0 ? sumlx / suml2 : 0
        var best = scale * sumlx
        for step in -9...9 where step != 0 {
            iscale = -(fmax + 0.1 * Float(step)) / max
            sumlx = 0; suml2 = 0
            for i in 0..<n {
                let l = level(iscale, i)
                sumlx += w[i] * x[i] * Float(l)
                suml2 += w[i] * Float(l) * Float(l)
            }
            if suml2 > 0 && sumlx * sumlx > best * suml2 {
                for i in 0..<n { L[i] = Int8(truncatingIfNeeded: level(iscale, i) + nmax) }
                scale = sumlx / suml2
                best = scale * sumlx
            }
        }
        return scale
    }

    /// `make_q3_quants` with `do_rmse` (plain Q3_K): symmetric quants in [-nmax, nmax-1] from the
    /// largest magnitude mapped to -nmax, then up to 5 rounds of moving single levels to where the
    /// x²-weighted least-squares fit of the others puts them. Levels stored with +nmax in `L`.
    static func symmetricRefined(_ n: Int, nmax: Int, _ x: UnsafePointer<Float>, _ L: UnsafeMutablePointer<Int8>) -> Float {
        var max: Float = 0, amax: Float = 0
        for i in 0..<n {
            let ax = abs(x[i])
            if ax > amax { amax = ax; max = x[i] }
        }
        if amax < groupMaxEps {
            for i in 0..<n { L[i] = 0 }
            return 0
        }
        let iscale = Float(-nmax) / max
        var sumlx: Float = 0, suml2: Float = 0
        for i in 0..<n {
            let l = Swift.max(-nmax, Swift.min(nmax - 1, nearestInt(iscale * x[i])))
            L[i] = Int8(truncatingIfNeeded: l)
            let w = x[i] * x[i]
            sumlx += w * x[i] * Float(l)
            suml2 += w * Float(l) * Float(l)
        }
        for _ in 0..<5 {
            var changed = 0
            for i in 0..<n {
                let w = x[i] * x[i]
                let li = Float(L[i])
                var slx = sumlx - w * x[i] * li
                guard slx > 0 else { continue }
                var sl2 = suml2 - w * li * li
                let newL = Swift.max(-nmax, Swift.min(nmax - 1, nearestInt(x[i] * sl2 / slx)))
                if newL != Int(L[i]) {
                    slx += w * x[i] * Float(newL)
                    sl2 += w * Float(newL) * Float(newL)
                    if sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2 {
                        L[i] = Int8(truncatingIfNeeded: newL)
                        sumlx = slx
                        suml2 = sl2
                        changed += 1
                    }
                }
            }
            if changed == 0 { break }
        }
        for i in 0..<n { L[i] = L[i] &+ Int8(nmax) }
        return suml2 > 0 ? sumlx / suml2 : 0
    }

    /// `make_qkx2_quants` (`version: .qkx2`, plain Q4_K / Q5_K) and `make_qkx3_quants` (`.qkx3`, Q4_K /
    /// Q5_K with importance): asymmetric quants in [0, nmax] for x ≈ scale·L - min, min ≥ 0, searching
    /// `nstep + 1` inverse scales (rmin + rdelta·k + nmax)/(max - min) and solving the weighted
    /// least-squares (scale, min) for each. Squared error. Returns (scale, min).
    enum Variant { case qkx2, qkx3 }
    static func asymmetric(_ n: Int, nmax: Int, _ x: UnsafePointer<Float>, weights w: UnsafePointer<Float>,
                           _ L: UnsafeMutablePointer<UInt8>, _ Laux: UnsafeMutablePointer<UInt8>,
                           rmin: Float, rdelta: Float, nstep: Int, variant: Variant) -> (scale: Float, min: Float) {
        var min = x[0], max = x[0]
        var sumW = w[0]
        var sumX = sumW * x[0]
        for i in 1..<n {
            if x[i] < min { min = x[i] }
            if x[i] > max { max = x[i] }
            sumW += w[i]
            sumX += w[i] * x[i]
        }
        if min > 0 { min = 0 }
        // qkx2 tests max == min, qkx3 max <= min (the same for finite inputs; differs only for NaN).
        if variant == .qkx2 ? max == min : max <= min {
            for i in 0..<n { L[i] = 0 }
            return (0, -min)
        }
        let fmax = Float(nmax)
        var iscale = fmax / (max - min)
        var scale = 1 / iscale
        var bestError: Float = 0
        for i in 0..<n {
            let l = Swift.max(0, Swift.min(nmax, nearestInt(iscale * (x[i] - min))))
            L[i] = UInt8(l)
            var diff = scale * Float(l) + min - x[i]
            diff = diff * diff
            bestError += w[i] * diff
        }
        if nstep < 1 { return (scale, -min) }
        for step in 0...nstep {
            iscale = (rmin + rdelta * Float(step) + fmax) / (max - min)
            var sumL: Float = 0, sumL2: Float = 0, sumXL: Float = 0
            for i in 0..<n {
                let l = Swift.max(0, Swift.min(nmax, nearestInt(iscale * (x[i] - min))))
                Laux[i] = UInt8(l)
                let fl = Float(l)
                sumL += w[i] * fl
                sumL2 += w[i] * fl * fl
                sumXL += w[i] * fl * x[i]
            }
            let D = sumW * sumL2 - sumL * sumL
            guard D > 0 else { continue }
            var thisScale = (sumW * sumXL - sumX * sumL) / D
            var thisMin = (sumL2 * sumX - sumL * sumXL) / D
            if thisMin > 0 {
                thisMin = 0
                thisScale = sumXL / sumL2
            }
            var error: Float = 0
            for i in 0..<n {
                var diff = thisScale * Float(Laux[i]) + thisMin - x[i]
                diff = diff * diff
                error += w[i] * diff
            }
            if error < bestError {
                for i in 0..<n { L[i] = Laux[i] }
                bestError = error
                scale = thisScale
                min = thisMin
            }
        }
        return (scale, -min)
    }

    /// `make_qp_quants`: quantizes non-negative values (the sub-block scales or mins of a super-block)
    /// to [0, nmax] with one scale, weighted by `w`: 8 nearby scales tried, then up to 5 rounds of
    /// moving single levels while that improves the weighted fit. `L` holds C's `uint8_t` levels.
    static func positive(_ n: Int, nmax: Int, _ x: UnsafePointer<Float>, weights w: UnsafePointer<Float>,
                         _ L: UnsafeMutablePointer<UInt8>) -> Float {
        var max: Float = 0
        for i in 0..<n { max = max > x[i] ? max : x[i] }
        if max < groupMaxEps {
            for i in 0..<n { L[i] = 0 }
            return 0
        }
        let fmax = Float(nmax)
        var iscale = fmax / max
        for i in 0..<n { L[i] = UInt8(truncatingIfNeeded: nearestInt(iscale * x[i])) }
        let scale = 1 / iscale
        var bestMSE: Float = 0
        for i in 0..<n {
            let diff = x[i] - scale * Float(L[i])
            bestMSE += w[i] * diff * diff
        }
        for step in -4...4 where step != 0 {
            let iscaleStep = (0.1 * Float(step) + fmax) / max
            let scaleStep = 1 / iscaleStep
            var mse: Float = 0
            for i in 0..<n {
                let l = Swift.min(nmax, nearestInt(iscaleStep * x[i]))
                let diff = x[i] - scaleStep * Float(l)
                mse += w[i] * diff * diff
            }
            if mse < bestMSE {
                bestMSE = mse
                iscale = iscaleStep
            }
        }
        var sumlx: Float = 0, suml2: Float = 0
        for i in 0..<n {
            let l = Swift.min(nmax, nearestInt(iscale * x[i]))
            L[i] = UInt8(truncatingIfNeeded: l)
            sumlx += w[i] * x[i] * Float(l)
            suml2 += w[i] * Float(l) * Float(l)
        }
        for _ in 0..<5 {
            var changed = 0
            for i in 0..<n {
                let li = Float(L[i])
                var slx = sumlx - w[i] * x[i] * li
                var sl2 = suml2 - w[i] * li * li
                guard slx > 0 && sl2 > 0 else { continue }
                let newL = Swift.min(nmax, nearestInt(x[i] * sl2 / slx))
                if newL != Int(L[i]) {
                    slx += w[i] * x[i] * Float(newL)
                    sl2 += w[i] * Float(newL) * Float(newL)
                    if slx * slx * suml2 > sumlx * sumlx * sl2 {
                        L[i] = UInt8(truncatingIfNeeded: newL)
                        sumlx = slx
                        suml2 = sl2
                        changed += 1
                    }
                }
            }
            if changed == 0 { break }
        }
        return suml2 > 0 ? sumlx / suml2 : 0
    }
}
