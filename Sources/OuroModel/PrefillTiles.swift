import CKernels
import Foundation
import Quantization

/// One registration of a weight range for the K-quant prefill GEMM's kept tiles
/// (ck_prefill_packs.h); the tiles are freed when the last registration of the range goes.
final class PrefillTileRegistration: @unchecked Sendable {
    let base: UnsafeRawPointer

    init?(base: UnsafeRawPointer, count: Int) {
        guard ck_prefill_packs_register(base, count) != 0 else { return nil }
        self.base = base
    }

    deinit { ck_prefill_packs_release(base) }
}

extension OuroWeights {
    /// Keeps the prefill GEMM's packed tiles of the K-quant projection matrices (Q3_K, Q4_K, Q5_K,
    /// Q6_K, IQ4_XS) for as long as these weights live: each 16-row tile is packed on the first
    /// prompt product that multiplies it (4 tokens or more) instead of on every one. Costs memory:
    /// ~1.2-1.4 bytes per packed weight (one byte per quant plus scales), about twice the matrices'
    /// bytes, held from the first prompt on; measured gain on Ouro-1.4B shapes, one thread: the
    /// 64-token GEMM 1.06x (Q5_K) and 1.01x (IQ4_XS), more at fewer tokens (Docs/BENCHMARKS.md).
    /// Off unless asked for (`OURO_PREFILL_TILES=keep` in the CLI). Returns whether the tiles are kept
    /// (false: no K-quant matrix, or the range could not be registered).
    @discardableResult
    public func keepPrefillTiles() -> Bool {
        prefillTilesLock.lock()
        defer { prefillTilesLock.unlock() }
        if prefillTiles != nil { return true }
        let kquant: Set<GGMLType> = [.q3_K, .q4_K, .q5_K, .q6_K, .iq4_xs]
        let matrices = layers.flatMap { [$0.q, $0.k, $0.v, $0.o, $0.gate, $0.up, $0.down] }
            .filter { kquant.contains($0.type) && $0.bytes.baseAddress != nil && $0.bytes.count > 0 }
        guard let first = matrices.map({ $0.bytes.baseAddress! }).min(),
              let end = matrices.map({ $0.bytes.baseAddress! + $0.bytes.count }).max() else { return false }
        // One range from the first matrix to the end of the last (they share the file's mapping).
        prefillTiles = PrefillTileRegistration(base: first, count: end - first)
        return prefillTiles != nil
    }

    /// Bytes held by kept prefill tiles in this process, over all weights.
    public static var keptPrefillTileBytes: Int { ck_prefill_packs_bytes() }
}
