/// Float rounding without libm calls. `Float.rounded(_:)` lowers to one instruction only where the
/// target has one (SSE4.1 `roundss`, NEON `frinta`/`frintn`); a baseline x86-64 build, which is what
/// SwiftPM compiles for, calls `roundf`/`rintf`/`truncf` for every element instead, which made Q8_0
/// conversion ~1.7x slower in CPU time. These give the same results with plain arithmetic and an
/// int conversion (SSE2 `cvttss2si`).
enum Rounding {
    /// Round half away from zero, as C's `roundf` (and `Float.rounded()`), signed zeros kept.
    /// Branch-free on the value (a data-dependent branch mispredicted on half the elements and made
    /// Q8_0 conversion slower than the libcall): on the magnitude m, trunc(m) plus 1 exactly when
    /// the (exact) fraction is >= 0.5, i.e. when trunc(2 * fraction) is 1.
    @inline(__always)
    static func halfAwayFromZero(_ x: Float) -> Float {
        let m = x.magnitude
        guard m < 0x1p23 else { return x }                       // already an integer, inf or NaN
        let whole = Float(Int32(m))                              // toward zero
        let up = Float(Int32(2 * (m - whole)))                   // 0 or 1
        return Float(signOf: x, magnitudeOf: whole + up)
    }

    /// Round half to even for |x| <= 2^22 (ggml's `nearest_int` trick: adding 1.5·2^23 leaves no
    /// fraction bits, so the float adder's own round-to-nearest-even does the work). Callers clamp.
    @inline(__always)
    static func halfToEvenSmall(_ x: Float) -> Float {
        (x + 12_582_912) - 12_582_912
    }
}
