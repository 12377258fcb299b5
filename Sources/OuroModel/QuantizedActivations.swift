import CKernels

/// Activations quantized to int8 blocks of 32 (one f32 scale and one quant sum per block), the
/// right-hand side of the integer kernels in CKernels. Grows to the largest call seen, then reused.
final class QuantizedActivations: @unchecked Sendable {
    private var capacity = 0                 // elements
    private var quants: UnsafeMutablePointer<Int8>?
    private var scales: UnsafeMutablePointer<Float>?
    private var sums: UnsafeMutablePointer<Int32>?

    deinit { free() }

    /// Quantizes x [tokens, cols] (cols a multiple of 32) and returns the kernel's view of it, valid
    /// until the next call.
    func quantize(_ x: UnsafePointer<Float>, tokens: Int, cols: Int) -> ck_activations {
        let count = tokens * cols
        if count > capacity { grow(to: count) }
        var a = ck_activations(qs: quants, d: scales, sums: sums, cols: Int32(cols), tokens: Int32(tokens), serial: 0)
        ck_quantize_activations(x, &a)
        return a
    }

    private func grow(to count: Int) {
        free()
        quants = .allocate(capacity: count)
        scales = .allocate(capacity: count / 32 + 1)
        sums = .allocate(capacity: count / 32 + 1)
        capacity = count
    }

    private func free() {
        quants?.deallocate()
        scales?.deallocate()
        sums?.deallocate()
    }
}
