/// bfloat16 bit patterns: the top half of a float.
///
/// Matches ggml's `ggml_compute_fp32_to_bf16` (and gguf-py's BF16 quantizer) bit for bit: round to
/// nearest even, and NaN stays NaN (quiet bit forced) instead of rounding up into inf, as torch does too.
public enum BFloat16Bits {
    @inlinable
    public static func from(_ x: Float) -> UInt16 {
        let bits = x.bitPattern
        if bits & 0x7fff_ffff > 0x7f80_0000 {
            return UInt16(truncatingIfNeeded: bits >> 16) | 0x40
        }
        return UInt16(truncatingIfNeeded: (bits &+ 0x7fff &+ ((bits >> 16) & 1)) >> 16)
    }

    /// Exact: a bf16 is a float with the low 16 mantissa bits zero.
    @inlinable
    public static func toFloat(_ h: UInt16) -> Float {
        Float(bitPattern: UInt32(h) << 16)
    }

    public static func convert(_ source: UnsafePointer<Float>, count: Int, into destination: UnsafeMutablePointer<UInt16>) {
        for i in 0..<count { destination[i] = from(source[i]) }
    }

    public static func expand(_ source: UnsafePointer<UInt16>, count: Int, into destination: UnsafeMutablePointer<Float>) {
        for i in 0..<count { destination[i] = toFloat(source[i]) }
    }
}
