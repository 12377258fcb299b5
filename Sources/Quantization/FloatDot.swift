import CKernels

/// Dot products of stored float rows (F32, F16, BF16) against float activations: CKernels'
/// `ck_dot_*` (four 8-lane FMA accumulators over 32 elements at a time on AVX2, plain C elsewhere).
/// Each has a plain scalar reference that tests compare it with (they agree to rounding, not bit for
/// bit: the sums are reassociated).
enum FloatDot {
    static func f32(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, count: Int) -> Float {
        ck_dot_f32(row, x, count)
    }

    static func f16(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, count: Int) -> Float {
        ck_dot_f16(row, x, count)
    }

    static func bf16(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, count: Int) -> Float {
        ck_dot_bf16(row, x, count)
    }

    /// Plain scalar reference for all three: convert each element, multiply, add in order.
    static func reference(_ type: GGMLType, _ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, count: Int) -> Float {
        var total: Float = 0
        for i in 0..<count {
            let w: Float
            switch type {
            case .f16: w = Float16Bits.referenceToFloat(row.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
            case .bf16: w = BFloat16Bits.toFloat(row.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
            default: w = row.loadUnaligned(fromByteOffset: 4 * i, as: Float.self)
            }
            total += w * x[i]
        }
        return total
    }
}
