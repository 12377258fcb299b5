/// TEMPORARY: the two widening conversions `floats(_:)` needs, kept here while the Quantization
/// module (which will own `Float16Bits.toFloat` / `BFloat16Bits.toFloat`) is written in parallel.
/// Replace the calls with those once they exist; both conversions here are exact.
enum HalfFloatConversion {
    /// bfloat16 is the top half of a float32: widening is a shift (NaN payloads kept).
    @inline(__always)
    static func bf16ToFloat(_ bits: UInt16) -> Float {
        Float(bitPattern: UInt32(bits) << 16)
    }

    /// IEEE binary16 to binary32 (subnormals, infinities and NaN included), by bit manipulation so
    /// it works on every platform whether or not Swift's Float16 is available there.
    @inline(__always)
    static func f16ToFloat(_ bits: UInt16) -> Float {
        let sign = UInt32(bits & 0x8000) << 16
        let exponent = UInt32(bits >> 10) & 0x1F
        let mantissa = UInt32(bits) & 0x3FF
        if exponent == 0x1F {   // infinity or NaN
            return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
        }
        if exponent != 0 {      // normal: rebias 15 -> 127
            return Float(bitPattern: sign | ((exponent + 112) << 23) | (mantissa << 13))
        }
        // Zero or subnormal: mantissa × 2^-24, exact in float32.
        let magnitude = Float(mantissa) * Float(bitPattern: 0x3380_0000)   // 2^-24
        return Float(bitPattern: sign | magnitude.bitPattern)
    }
}
