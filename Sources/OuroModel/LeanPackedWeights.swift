import CKernels
import Quantization

/// A copy of the model's Q4_0 / Q8_0 matrices (every layer's projections and the output head)
/// packed at load in the lane order of the compute-lean kernels (`ck_lean_pack`), for `ouro serve`'s
/// batched decode steps: a 2...8-token product then only loads each group of blocks instead of
/// gathering and transposing it on every call (kernels_lean_pack.c). The mapped weights stay as
/// they are: one-token decoding, prefill and speculative verification keep reading them with their
/// own kernels. Memory: as many bytes as the packed matrices (a packed row is exactly a ggml row).
/// Empty where this CPU has no lean kernel for a type (`ck_lean_tokens`), so it costs nothing there.
public final class LeanPackedWeights: @unchecked Sendable {
    /// Packed copy by the mapped matrix's first byte.
    private var packed: [UnsafeRawPointer: UnsafeMutableRawPointer] = [:]
    /// Bytes held by the packed copies.
    public private(set) var byteCount = 0

    /// Packs every Q4_0 / Q8_0 matrix of `weights` the lean kernels take on this CPU, over `threads` threads.
    public init(weights: OuroWeights, threads: Int) {
        var matrices = weights.layers.flatMap { [$0.q, $0.k, $0.v, $0.o, $0.gate, $0.up, $0.down] }
        matrices.append(weights.output)
        for w in matrices {
            guard let type = LinearKernels.integerKernelType(w.type), ck_lean_tokens(type) > 0,
                  let base = w.bytes.baseAddress, packed[base] == nil, w.rows > 0 else { continue }
            let copy = UnsafeMutableRawPointer.allocate(byteCount: w.bytes.count, alignment: 64)
            guard ck_lean_pack(type, base, w.rowByteCount, Int32(w.rows), Int32(w.columns), copy, Int32(max(1, threads))) != 0 else {
                copy.deallocate()
                continue
            }
            packed[base] = copy
            byteCount += w.bytes.count
        }
    }

    deinit { packed.values.forEach { $0.deallocate() } }

    /// The packed copy of `w`, nil when it has none.
    func copy(of w: WeightTensor) -> UnsafeRawPointer? {
        guard let base = w.bytes.baseAddress, let copy = packed[base] else { return nil }
        return UnsafeRawPointer(copy)
    }
}
