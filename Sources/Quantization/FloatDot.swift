/// Dot products of stored float rows (F32, F16, BF16) against float activations: four 8-lane
/// accumulators over 32 elements at a time, then a scalar tail. Each has a plain scalar reference
/// that tests compare it with (they agree to rounding, not bit for bit: the sums are reassociated).
enum FloatDot {
    static func f32(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, count: Int) -> Float {
        dot(row, x, count: count, elementSize: 4, load8: { $0.loadUnaligned(as: SIMD8<Float>.self) },
            load1: { $0.loadUnaligned(as: Float.self) })
    }

    static func f16(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, count: Int) -> Float {
        dot(row, x, count: count, elementSize: 2,
            load8: { SIMD8<Float>($0.loadUnaligned(as: SIMD8<Float16>.self)) },
            load1: { Float($0.loadUnaligned(as: Float16.self)) })
    }

    static func bf16(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, count: Int) -> Float {
        dot(row, x, count: count, elementSize: 2,
            load8: { unsafeBitCast(SIMD8<UInt32>(truncatingIfNeeded: $0.loadUnaligned(as: SIMD8<UInt16>.self)) &<< 16,
                                   to: SIMD8<Float>.self) },
            load1: { BFloat16Bits.toFloat($0.loadUnaligned(as: UInt16.self)) })
    }

    @inline(__always)
    private static func dot(_ row: UnsafeRawPointer, _ x: UnsafePointer<Float>, count: Int, elementSize: Int,
                            load8: (UnsafeRawPointer) -> SIMD8<Float>, load1: (UnsafeRawPointer) -> Float) -> Float {
        var a0 = SIMD8<Float>.zero, a1 = SIMD8<Float>.zero, a2 = SIMD8<Float>.zero, a3 = SIMD8<Float>.zero
        let xr = UnsafeRawPointer(x)
        var i = 0
        while i + 32 <= count {
            let r = row + i * elementSize, xi = xr + i * 4
            a0 = a0.addingProduct(load8(r), xi.loadUnaligned(as: SIMD8<Float>.self))
            a1 = a1.addingProduct(load8(r + 8 * elementSize), xi.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self))
            a2 = a2.addingProduct(load8(r + 16 * elementSize), xi.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float>.self))
            a3 = a3.addingProduct(load8(r + 24 * elementSize), xi.loadUnaligned(fromByteOffset: 96, as: SIMD8<Float>.self))
            i += 32
        }
        var total = ((a0 + a1) + (a2 + a3)).sum()
        while i < count {
            total += load1(row + i * elementSize) * x[i]
            i += 1
        }
        return total
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
