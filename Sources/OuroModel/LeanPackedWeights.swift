import CKernels
import OuroIO
import Quantization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

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
    /// The one allocation holding every copy.
    private var storage: UnsafeMutableRawPointer?
    private var storageBytes = 0
    /// Bytes held by the packed copies.
    public private(set) var byteCount = 0

    /// Packs every Q4_0 / Q8_0 matrix of `weights` the lean kernels take on this CPU, over `threads` threads.
    public init(weights: OuroWeights, threads: Int) {
        var matrices = weights.layers.flatMap { [$0.q, $0.k, $0.v, $0.o, $0.gate, $0.up, $0.down] }
        matrices.append(weights.output)
        var seen = Set<UnsafeRawPointer>()
        let taken = matrices.filter { w in
            guard let type = LinearKernels.integerKernelType(w.type), ck_lean_tokens(type) > 0,
                  let base = w.bytes.baseAddress, w.rows > 0 else { return false }
            return seen.insert(base).inserted
        }
        let aligned = { (bytes: Int) in (bytes + 63) / 64 * 64 }
        let total = taken.reduce(0) { $0 + aligned($1.bytes.count) }
        guard total > 0, let storage = Self.allocate(total) else { return }
        self.storage = storage
        storageBytes = total
        var offset = 0
        for w in taken {
            let copy = storage + offset
            guard ck_lean_pack(LinearKernels.integerKernelType(w.type)!, w.bytes.baseAddress!, w.rowByteCount, Int32(w.rows),
                               Int32(w.columns), copy, Int32(max(1, threads))) != 0 else { continue }
            packed[w.bytes.baseAddress!] = copy
            byteCount += w.bytes.count
            offset += aligned(w.bytes.count)
        }
    }

    /// `bytes` 2 MiB-aligned and advised MADV_HUGEPAGE: the batched products stream the whole copy
    /// every loop step, and with 4 KiB pages (this machine's THP mode is `madvise`) that is a TLB
    /// miss and a stop of the hardware prefetchers every 4 KiB, as for the file's weights
    /// (`OURO_WEIGHTS=huge-pages`). Nil when memory is short.
    private static func allocate(_ bytes: Int) -> UnsafeMutableRawPointer? { HugePages.allocate(bytes) }

    deinit { if let storage { HugePages.deallocate(storage, bytes: storageBytes) } }

    /// The packed copy of `w`, nil when it has none.
    func copy(of w: WeightTensor) -> UnsafeRawPointer? {
        guard let base = w.bytes.baseAddress, let copy = packed[base] else { return nil }
        return UnsafeRawPointer(copy)
    }
}
