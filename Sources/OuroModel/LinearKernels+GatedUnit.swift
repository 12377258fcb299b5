import CKernels
import Foundation

extension LinearKernels {
    /// The MLP's gated unit of one input: gate = silu(x · Gateᵀ) * (x · Upᵀ) into `gate` [T, I]
    /// (`up` [T, I] is scratch). One decoded token on the integer kernels runs as one pool job whose
    /// task i computes rows [64i, 64i + 64) of both products and then their silu product, so the
    /// I `expf` calls are split across the threads instead of running on the caller after the job
    /// (at Ouro-1.4B shapes they were ~5 % of a two-thread token). Every element is computed by the
    /// same expression as before, so results are bit for bit those of `linear` + `siluGate`.
    func gatedUnit(gate wg: WeightTensor, up wu: WeightTensor, _ x: UnsafePointer<Float>, tokens: Int,
                   into gate: UnsafeMutablePointer<Float>, up: UnsafeMutablePointer<Float>) {
        let rows = wg.rows, cols = wg.columns
        guard tokens == 1, !decodeIdentical, threads > 1, wu.rows == rows, wu.columns == cols,
              let gateType = Self.integerKernelType(wg.type), let upType = Self.integerKernelType(wu.type),
              2 * rows * cols >= 1 << 16 else {
            linear([wg, wu], x, tokens: tokens, into: [gate, up])
            Self.siluGate(gate, up, count: tokens * rows)
            return
        }
        precondition(cols <= maxColumns, "LinearKernels scratch sized for \(maxColumns) columns, got \(cols)")
        var a = quantized.quantize(x, tokens: 1, cols: cols)
        withUnsafePointer(to: &a) { activations in
            var work = GatedWork(gateType: gateType, upType: upType, gateBytes: wg.bytes.baseAddress!, upBytes: wu.bytes.baseAddress!,
                                 gateRowBytes: wg.rowByteCount, upRowBytes: wu.rowByteCount, rows: rows, chunk: 64,
                                 activations: activations, gate: gate, up: up)
            let tasks = (rows + work.chunk - 1) / work.chunk
            withUnsafeMutablePointer(to: &work) { context in
                ck_parallel_for(Int32(tasks), Int32(threads), { context, index in
                    context!.assumingMemoryBound(to: GatedWork.self).pointee.run(Int(index))
                }, context)
            }
        }
    }

    /// gate[i] = silu(gate[i]) * up[i], as torch computes silu: x / (1 + e^-x). In C (ck_silu_gate):
    /// 16 lanes at a time on the AVX-512 levels, each result bit for bit the scalar expression's
    /// with glibc's expf (the Swift loop of expf calls was ~4 % of a one-thread 64-token prefill).
    static func siluGate(_ gate: UnsafeMutablePointer<Float>, _ up: UnsafePointer<Float>, count: Int) {
        ck_silu_gate(gate, up, count)
    }
}

/// One token's gated unit split into tasks of `chunk` rows of both matrices.
private struct GatedWork {
    let gateType: Int32, upType: Int32
    let gateBytes: UnsafeRawPointer, upBytes: UnsafeRawPointer
    let gateRowBytes: Int, upRowBytes: Int
    let rows: Int, chunk: Int
    let activations: UnsafePointer<ck_activations>
    let gate: UnsafeMutablePointer<Float>, up: UnsafeMutablePointer<Float>

    func run(_ task: Int) {
        let row0 = task * chunk, row1 = min(row0 + chunk, rows)
        ck_matmul_rows(gateType, gateBytes, gateRowBytes, Int32(row0), Int32(row1), activations, gate, rows)
        ck_matmul_rows(upType, upBytes, upRowBytes, Int32(row0), Int32(row1), activations, up, rows)
        LinearKernels.siluGate(gate + row0, up + row0, count: row1 - row0)
    }
}
