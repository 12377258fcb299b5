import COpenBLAS
import Dispatch
import Quantization

/// The one entry point for linear layers: y[T, out] = x[T, in] · Wᵀ for W of any ggml type.
///
/// - f32: cblas_sgemm (sgemv when T == 1) straight on the mapped weights.
/// - f16/bf16/q8_0/q4_0: T == 1 uses `dotRow` per row (no expansion at all); T > 1 expands
///   `tileRows` rows at a time into a scratch f32 tile and multiplies the tile with sgemm, so the
///   model is never expanded to f32 as a whole.
final class LinearKernels: @unchecked Sendable {
    static let tileRows = 128
    /// Below this many weight elements a T == 1 product is not worth splitting across threads.
    static let parallelThreshold = 1 << 17

    private let tile: FloatBuffer
    let maxColumns: Int

    init(maxColumns: Int) {
        self.maxColumns = maxColumns
        tile = FloatBuffer(Self.tileRows * maxColumns)
    }

    /// `x` holds `tokens` rows of `w.columns` floats, `y` receives `tokens` rows of `w.rows` floats.
    func linear(_ w: WeightTensor, _ x: UnsafePointer<Float>, tokens: Int, into y: UnsafeMutablePointer<Float>) {
        let rows = w.rows, cols = w.columns
        precondition(cols <= maxColumns, "LinearKernels scratch sized for \(maxColumns) columns, got \(cols)")
        guard tokens > 0, rows > 0 else { return }
        if w.type == .f32 {
            let a = w.bytes.baseAddress!.assumingMemoryBound(to: Float.self)
            if tokens == 1 {
                cblas_sgemv(CblasRowMajor, CblasNoTrans, Int32(rows), Int32(cols), 1, a, Int32(cols), x, 1, 0, y, 1)
            } else {
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(tokens), Int32(rows), Int32(cols),
                            1, x, Int32(cols), a, Int32(cols), 0, y, Int32(rows))
            }
        } else if tokens == 1 {
            Self.dotRows(w, x, into: y)
        } else {
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

    /// y[r] = dot(W[r], x) for every row, split over two threads when the matrix is large.
    private static func dotRows(_ w: WeightTensor, _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>) {
        let rows = w.rows
        let work = DotWork(w: w, x: x, y: y)
        if rows * w.columns < parallelThreshold || rows < 2 {
            work.run(0..<rows)
            return
        }
        let chunks = 2
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            work.run((rows * c / chunks)..<(rows * (c + 1) / chunks))
        }
    }

    /// The pointers of one dotRows call; each thread writes a disjoint row range of `y`.
    private struct DotWork: @unchecked Sendable {
        let w: WeightTensor
        let x: UnsafePointer<Float>
        let y: UnsafeMutablePointer<Float>

        func run(_ range: Range<Int>) {
            let cols = w.columns
            for r in range { y[r] = dotRow(w.type, w.row(r), x, count: cols) }
        }
    }
}
