import CKernels
import COpenBLAS
import Dispatch
import Quantization

/// The one entry point for linear layers: y[T, out] = x[T, in] · Wᵀ for W of any ggml type.
///
/// - q8_0/q4_0/iq4_nl/q3_K/q4_K/q5_K/q6_K/iq4_xs: activations are quantized to int8 blocks (`QuantizedActivations`), then CKernels'
///   integer dot kernels (VNNI / AVX2 / C, picked at run time) run over the mapped weights, split
///   across `threads` threads; prefill (T >= 4) runs a 16-row x 8-token int8 GEMM on VNNI CPUs.
/// - f32: cblas_sgemm (sgemv when T == 1) straight on the mapped weights.
/// - f16/bf16 (and the float tiles when `integerPrefill` is off): T == 1 uses `dotRow` per row; T > 1
///   expands `tileRows` rows at a time into a scratch f32 tile multiplied with sgemm, so the model
///   is never expanded to f32 as a whole.
final class LinearKernels: @unchecked Sendable {
    static let tileRows = 128
    /// Below this many weight elements a T == 1 float product is not worth splitting across threads.
    static let parallelThreshold = 1 << 17

    let maxColumns: Int
    /// Threads a product may use (the caller included).
    let threads: Int
    /// T > 1 on the integer-kernel types through the integer kernels (true) or dequantized tiles + sgemm (false).
    let integerPrefill: Bool
    /// T > 1 products that give each token bit for bit what a T == 1 product gives it (speculative
    /// verification must reproduce plain decoding): integer types in runs of
    /// `ck_decode_identical_tokens` tokens (the small-batch or row kernels, weights read once per
    /// run; the GEMM sums in another order), float types one token at a time.
    var decodeIdentical = false
    /// T = 2...CK_SMALL_T_MAX_TOKENS integer products through the compute-lean kernels
    /// (`ck_matmul_lean`: the same integer block dots, summed in another order, so results agree with
    /// T == 1 products to float rounding, not bit for bit): `ouro serve`'s batched decode steps.
    /// `decodeIdentical` wins when both are set.
    var throughput = false
    /// Packed copies the throughput products read instead of the mapped Q4_0 / Q8_0 weights.
    var leanPacked: LeanPackedWeights?
    private var tileStorage: FloatBuffer?
    let quantized = QuantizedActivations()

    init(maxColumns: Int, threads: Int = LinearKernels.defaultThreads, integerPrefill: Bool = true) {
        self.maxColumns = maxColumns
        self.threads = max(1, threads)
        self.integerPrefill = integerPrefill
    }

    /// One thread per online CPU.
    static var defaultThreads: Int { Int(ck_cpu_count()) }

    /// The scratch tile, allocated on first use (decode never needs it).
    private var tile: FloatBuffer {
        if let tile = tileStorage { return tile }
        let tile = FloatBuffer(Self.tileRows * maxColumns)
        tileStorage = tile
        return tile
    }

    /// `x` holds `tokens` rows of `w.columns` floats, `y` receives `tokens` rows of `w.rows` floats.
    func linear(_ w: WeightTensor, _ x: UnsafePointer<Float>, tokens: Int, into y: UnsafeMutablePointer<Float>) {
        let rows = w.rows, cols = w.columns
        precondition(cols <= maxColumns, "LinearKernels scratch sized for \(maxColumns) columns, got \(cols)")
        guard tokens > 0, rows > 0 else { return }
        if decodeIdentical && tokens > 1 && Self.integerKernelType(w.type) == nil && w.type != .f32 {
            // f16/bf16 decode is dotRow per row: the same calls for every token, each row read once.
            dotRows(w, x, tokens: tokens, into: y)
            return
        }
        if decodeIdentical && tokens > 1 {
            decodeIdenticalRuns([Self.integerKernelType(w.type)], tokens: tokens) { t, n in
                linear(w, x + t * cols, tokens: n, into: y + t * rows)
            }
            return
        }
        if throughput && throughputLinear([w], x, tokens: tokens, into: [y]) { return }
        if let kernelType = Self.integerKernelType(w.type), tokens == 1 || integerPrefill {
            var a = quantized.quantize(x, tokens: tokens, cols: cols)
            ck_matmul(kernelType, w.bytes.baseAddress!, w.rowByteCount, Int32(rows), &a, y, rows, Int32(threads))
        } else if w.type == .f32 {
            let a = w.bytes.baseAddress!.assumingMemoryBound(to: Float.self)
            if tokens == 1 {
                cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(rows), Int32(cols), 1, a, Int32(cols), x, 1, 0, y, 1)
            } else {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(tokens), Int32(rows), Int32(cols),
                            1, x, Int32(cols), a, Int32(cols), 0, y, Int32(rows))
            }
        } else if tokens == 1 {
            dotRows(w, x, into: y)
        } else {
            let tile = self.tile
            var r0 = 0
            while r0 < rows {
                let n = min(Self.tileRows, rows - r0)
                for r in 0..<n { dequantizeRow(w.type, w.row(r0 + r), count: cols, into: tile.pointer + r * cols) }
                // y[:, r0 ..< r0+n] = x · tileᵀ, written in place with ldc = rows.
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(tokens), Int32(n), Int32(cols),
                            1, x, Int32(cols), tile.pointer, Int32(cols), 0, y + r0, Int32(rows))
                r0 += n
            }
        }
    }

    /// Products of one input with several matrices (q/k/v, gate/up): on the integer kernels the
    /// input is quantized once and all rows go into one pool job, so the threads meet once per group
    /// instead of once per matrix (decode runs ~700 products per token; each meeting costs the
    /// faster thread the slower one's last chunk). Other types take `linear` per matrix.
    func linear(_ ws: [WeightTensor], _ x: UnsafePointer<Float>, tokens: Int, into ys: [UnsafeMutablePointer<Float>]) {
        precondition(ws.count == ys.count && ws.allSatisfy { $0.columns == ws[0].columns })
        if decodeIdentical && tokens > 1 {
            let cols = ws[0].columns
            decodeIdenticalRuns(ws.map { Self.integerKernelType($0.type) }, tokens: tokens) { t, n in
                linear(ws, x + t * cols, tokens: n, into: zip(ws, ys).map { $1 + t * $0.rows })
            }
            return
        }
        if throughput && throughputLinear(ws, x, tokens: tokens, into: ys) { return }
        let types = ws.map { Self.integerKernelType($0.type) }
        guard tokens > 0, tokens == 1 || integerPrefill, !types.contains(nil), ws.allSatisfy({ $0.rows > 0 }) else {
            for (w, y) in zip(ws, ys) { linear(w, x, tokens: tokens, into: y) }
            return
        }
        let cols = ws[0].columns
        precondition(cols <= maxColumns, "LinearKernels scratch sized for \(maxColumns) columns, got \(cols)")
        var a = quantized.quantize(x, tokens: tokens, cols: cols)
        let totalRows = ws.reduce(0) { $0 + $1.rows }
        withUnsafePointer(to: &a) { activations in
            // As ck_matmul: small products stay on this thread; chunks of 64 rows (16 for prefill).
            if threads <= 1 || totalRows * cols * tokens < 1 << 16 {
                for (i, w) in ws.enumerated() {
                    ck_matmul_rows(types[i]!, w.bytes.baseAddress!, w.rowByteCount, 0, Int32(w.rows), activations, ys[i], w.rows)
                }
                return
            }
            let chunk = tokens > 1 ? 16 : 64
            var work = GroupWork(products: ws.enumerated().map { i, w in
                GroupWork.Product(type: types[i]!, bytes: w.bytes.baseAddress!, rowBytes: w.rowByteCount, rows: w.rows, y: ys[i])
            }, chunk: chunk, activations: activations)
            let chunks = work.firstChunk.last!
            withUnsafeMutablePointer(to: &work) { context in
                ck_parallel_for(Int32(chunks), Int32(threads), { context, index in
                    context!.assumingMemoryBound(to: GroupWork.self).pointee.run(Int(index))
                }, context)
            }
        }
    }

    /// The products of one grouped call; task i is a chunk of one product's rows.
    private struct GroupWork {
        struct Product {
            let type: Int32
            let bytes: UnsafeRawPointer
            let rowBytes: Int
            let rows: Int
            let y: UnsafeMutablePointer<Float>
        }
        let products: [Product]
        let chunk: Int
        let activations: UnsafePointer<ck_activations>
        /// Index of each product's first chunk, and the total at the end.
        let firstChunk: [Int]

        init(products: [Product], chunk: Int, activations: UnsafePointer<ck_activations>) {
            self.products = products
            self.chunk = chunk
            self.activations = activations
            var first = [0]
            for p in products { first.append(first.last! + (p.rows + chunk - 1) / chunk) }
            firstChunk = first
        }

        func run(_ index: Int) {
            var i = 0
            while index >= firstChunk[i + 1] { i += 1 }
            let p = products[i]
            let row0 = (index - firstChunk[i]) * chunk
            ck_matmul_rows(p.type, p.bytes, p.rowBytes, Int32(row0), Int32(min(row0 + chunk, p.rows)), activations, p.y, p.rows)
        }
    }

    /// Calls `body(firstToken, count)` over runs of tokens whose products give each token its
    /// one-token result (`ck_decode_identical_tokens`: 3, or up to CK_SMALL_T_MAX_TOKENS where the
    /// level has small-batch kernels for every type in `types`; float types one token at a time).
    private func decodeIdenticalRuns(_ types: [Int32?], tokens: Int, _ body: (Int, Int) -> Void) {
        let integer = !types.isEmpty && !types.contains(nil)
        let run = integer && integerPrefill ? types.map { Int(ck_decode_identical_tokens($0!)) }.min()! : 1
        decodeIdentical = false
        defer { decodeIdentical = true }
        var t = 0
        while t < tokens {
            let n = min(run, tokens - t)
            body(t, n)
            t += n
        }
    }

    /// The CKernels type id for weight types the integer kernels read, else nil.
    static func integerKernelType(_ type: GGMLType) -> Int32? {
        switch type {
        case .q8_0: return Int32(CK_TYPE_Q8_0)
        case .q4_0: return Int32(CK_TYPE_Q4_0)
        case .q4_K: return Int32(CK_TYPE_Q4_K)
        case .q6_K: return Int32(CK_TYPE_Q6_K)
        case .iq4_nl: return Int32(CK_TYPE_IQ4_NL)
        case .q3_K: return Int32(CK_TYPE_Q3_K)
        case .q5_K: return Int32(CK_TYPE_Q5_K)
        case .iq4_xs: return Int32(CK_TYPE_IQ4_XS)
        default: return nil
        }
    }

    /// y[t, r] = dot(W[r], x[t]) for every row and token, split over the pool when the matrix is large.
    private func dotRows(_ w: WeightTensor, _ x: UnsafePointer<Float>, tokens: Int = 1, into y: UnsafeMutablePointer<Float>) {
        let rows = w.rows
        var work = DotWork(w: w, x: x, y: y, chunk: 64, tokens: tokens)
        if rows * w.columns < Self.parallelThreshold || rows < 2 || threads < 2 {
            work.run(0..<rows)
            return
        }
        let chunks = (rows + work.chunk - 1) / work.chunk
        withUnsafeMutablePointer(to: &work) { context in
            ck_parallel_for(Int32(chunks), Int32(threads), { context, index in
                let work = context!.assumingMemoryBound(to: DotWork.self).pointee
                let start = Int(index) * work.chunk
                work.run(start..<min(start + work.chunk, work.w.rows))
            }, context)
        }
    }

    /// The pointers of one dotRows call; each task writes a disjoint row range of `y`.
    private struct DotWork {
        let w: WeightTensor
        let x: UnsafePointer<Float>
        let y: UnsafeMutablePointer<Float>
        let chunk: Int
        let tokens: Int

        func run(_ range: Range<Int>) {
            let cols = w.columns, rows = w.rows
            for r in range {
                for t in 0..<tokens { y[t * rows + r] = dotRow(w.type, w.row(r), x + t * cols, count: cols) }
            }
        }
    }
}
