import CKernels

/// IEEE 754 binary16 ("half") bit patterns, as ggml stores F16 tensors and block scales.
///
/// `from` rounds to nearest, ties to even, overflowing to ±inf; NaN stays NaN (quiet).
/// The bulk conversions are CKernels' `ck_f32_to_f16` / `ck_f16_to_f32`: F16C (`vcvtps2ph` /
/// `vcvtph2ps`) chosen at run time, plain C elsewhere; 0.09 ns/element with F16C on the Zen 4 host
/// against ~2.2 ns for scalar conversions. The one-value conversions use Swift's `Float16` (a
/// libcall or one instruction, depending on the target), or the bit-level reference below where
/// Swift has no `Float16` (macOS on x86_64). The reference also documents and tests the rounding.
public enum Float16Bits {
    @inlinable
    public static func from(_ x: Float) -> UInt16 {
        #if (os(macOS) || targetEnvironment(macCatalyst)) && arch(x86_64)
        referenceFrom(x)
        #else
        Float16(x).bitPattern
        #endif
    }

    @inlinable
    public static func toFloat(_ h: UInt16) -> Float {
        #if (os(macOS) || targetEnvironment(macCatalyst)) && arch(x86_64)
        referenceToFloat(h)
        #else
        Float(Float16(bitPattern: h))
        #endif
    }

    /// Converts `count` floats to half bit patterns.
    public static func convert(_ source: UnsafePointer<Float>, count: Int, into destination: UnsafeMutablePointer<UInt16>) {
        ck_f32_to_f16(source, destination, count)
    }

    /// Expands `count` half bit patterns to floats.
    public static func expand(_ source: UnsafePointer<UInt16>, count: Int, into destination: UnsafeMutablePointer<Float>) {
        ck_f16_to_f32(source, destination, count)
    }

    /// Software reference for `from`: round to nearest even on the float's bits.
    public static func referenceFrom(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        let sign = UInt16(truncatingIfNeeded: (bits >> 16) & 0x8000)
        let magnitude = bits & 0x7fff_ffff
        let exponent = Int(magnitude >> 23)
        let mantissa = magnitude & 0x7f_ffff
        if magnitude > 0x7f80_0000 {                    // NaN: quiet it, keep the top payload bits
            return sign | 0x7e00 | UInt16(truncatingIfNeeded: mantissa >> 13)
        }
        if exponent >= 143 { return sign | 0x7c00 }     // >= 2^16 (and inf): overflow to inf
        if exponent >= 113 {                            // normal half
            var h = UInt32(exponent - 112) << 10 | mantissa >> 13
            let rest = mantissa & 0x1fff
            if rest > 0x1000 || (rest == 0x1000 && h & 1 == 1) { h += 1 }   // a carry may reach inf: correct
            return sign | UInt16(truncatingIfNeeded: h)
        }
        if exponent < 102 { return sign }               // below 2^-25: rounds to zero
        // Subnormal half: value = m * 2^-24 with m = significand >> (126 - exponent).
        let significand = mantissa | 0x80_0000
        let shift = UInt32(126 - exponent)              // 14...24
        var m = significand >> shift
        let rest = significand & ((1 << shift) - 1)
        let half = UInt32(1) << (shift - 1)
        if rest > half || (rest == half && m & 1 == 1) { m += 1 }   // m may become 1024: the smallest normal
        return sign | UInt16(truncatingIfNeeded: m)
    }

    /// Software reference for `toFloat` (exact: every half is a float).
    public static func referenceToFloat(_ h: UInt16) -> Float {
        let sign: Float = h & 0x8000 != 0 ? -1 : 1
        let exponent = UInt32(h >> 10) & 0x1f
        let mantissa = UInt32(h) & 0x3ff
        let signBit = UInt32(h & 0x8000) << 16
        switch exponent {
        case 0: return sign * Float(mantissa) * 0x1p-24
        case 31: return Float(bitPattern: signBit | 0x7f80_0000 | mantissa << 13)
        default: return Float(bitPattern: signBit | (exponent + 112) << 23 | mantissa << 13)
        }
    }
}
