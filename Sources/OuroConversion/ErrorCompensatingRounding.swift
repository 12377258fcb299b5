import COpenBLAS
import Foundation
import Quantization

/// GPTQ-style rounding inside ggml's block types. Each weight row is quantized column by column in
/// storage order; a column's rounding error, scaled through the inverse Hessian of the matrix's input,
/// is fed forward into the columns not yet quantized, so later codes compensate for earlier ones
/// (Frantar et al., "GPTQ", 2022; optimal brain quantization). A block's scales (and Q4_K mins) are
/// chosen by ggml's own quantizer from the *updated* weights when the column sweep reaches the block;
/// only the choice of codes differs from ggml, so the output is ordinary Q4_0 / IQ4_NL / Q4_K / Q6_K
/// that any ggml reader dequantizes.
///
/// Rows are independent given H, so a matrix is processed a chunk of rows at a time (bounded memory),
/// with GPTQ's lazy batch updates: errors inside a batch of columns are applied at once, the rest of
/// the row is updated by one sgemm per batch.
public enum ErrorCompensatingRounding {
    /// Relative damping added to H's diagonal (times its mean) before inverting: GPTQ's 1% default.
    public static let defaultDamping = 0.01

    /// U, upper triangular (row-major, f32), with (H + λ·mean(diag H)·I)⁻¹ = Uᵀ U.
    public final class Factor: @unchecked Sendable {
        public let columns: Int
        let upper: [Float]
        init(columns: Int, upper: [Float]) {
            self.columns = columns
            self.upper = upper
        }
    }

    /// Factors H. Columns that never saw a non-zero input get a unit diagonal (their error costs
    /// nothing either way). If H + damping is still not positive definite (rounding), damping grows x10.
    public static func factor(_ h: Hessians.Matrix, damping: Double = defaultDamping) -> Factor {
        let n = h.columns
        var meanDiagonal = 0.0
        for i in 0..<n { meanDiagonal += Double(h.values[i * n + i]) }
        meanDiagonal = max(meanDiagonal / Double(max(n, 1)), 1e-12)
        var lambda = damping
        while true {
            if let upper = try? inverseCholeskyUpper(h, add: lambda * meanDiagonal) {
                return Factor(columns: n, upper: upper)
            }
            lambda = max(lambda * 10, 1e-6)
        }
    }

    struct NotPositiveDefinite: Error {}

    /// Row-major throughout. dpotrf on the column-major view with uplo "L" factors H = Rᵀ R with R
    /// upper in row-major terms; H⁻¹ = R⁻¹ R⁻ᵀ; a second factorization gives H⁻¹ = Uᵀ U.
    private static func inverseCholeskyUpper(_ h: Hessians.Matrix, add: Double) throws -> [Float] {
        let n = h.columns
        var a = h.values.map(Double.init)
        for i in 0..<n {
            if a[i * n + i] <= 0 { a[i * n + i] = 1 }
            a[i * n + i] += add
        }
        try choleskyUpper(&a, n)
        // X = R⁻¹: solve R X = I.
        var x = [Double](repeating: 0, count: n * n)
        for i in 0..<n { x[i * n + i] = 1 }
        a.withUnsafeBufferPointer { r in
            x.withUnsafeMutableBufferPointer { xb in
                cblas_dtrsm(CblasRowMajor, CblasLeft, CblasUpper, CblasNoTrans, CblasNonUnit, Int32(n), Int32(n), 1,
                            r.baseAddress!, Int32(n), xb.baseAddress!, Int32(n))
            }
        }
        // H⁻¹ = X Xᵀ (upper triangle), then symmetric; into `a`'s storage (R is done with), so a
        // 5632-column H needs two n² double buffers, not three.
        var inverse = a
        a = []
        x.withUnsafeBufferPointer { xb in
            inverse.withUnsafeMutableBufferPointer { c in
                cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, Int32(n), Int32(n), 1, xb.baseAddress!, Int32(n),
                            0, c.baseAddress!, Int32(n))
            }
        }
        x = []
        for i in 0..<n { for j in 0..<i { inverse[i * n + j] = inverse[j * n + i] } }
        try choleskyUpper(&inverse, n)
        return inverse.map(Float.init)
    }

    /// In place: the upper triangle (row-major) becomes R with A = Rᵀ R; the lower is zeroed.
    private static func choleskyUpper(_ a: inout [Double], _ n: Int) throws {
        var info: Int32 = 0, size = Int32(n)
        a.withUnsafeMutableBufferPointer { p in
            dpotrf_("L", &size, p.baseAddress!, &size, &info, 1)
        }
        guard info == 0 else { throw NotPositiveDefinite() }
        for i in 0..<n { for j in 0..<i { a[i * n + j] = 0 } }
    }

    /// Quantizes `count` rows of `columns` floats (row-major, **overwritten**: they end as the
    /// error-updated weights) into `type` rows at `destination`. `importance` (one value per column)
    /// guides ggml's scale choice per block, as for the imatrix; nil uses ggml's reference choice.
    public static func quantize(rows w: UnsafeMutablePointer<Float>, count: Int, columns n: Int, type: GGMLType,
                                factor: Factor, importance: UnsafePointer<Float>?, into destination: UnsafeMutableRawPointer) {
        precondition(supportsElementRounding(type) && factor.columns == n)
        let blockSize = type.blockSize, blockBytes = type.bytesPerBlock
        let rowBytes = type.rowByteCount(n)!
        let batch = blockSize * max(1, 128 / blockSize)
        let errors = UnsafeMutablePointer<Float>.allocate(capacity: count * batch)
        defer { errors.deallocate() }
        factor.upper.withUnsafeBufferPointer { ub in
            let u = ub.baseAddress!
            var i1 = 0
            while i1 < n {
                let i2 = min(i1 + batch, n), width = i2 - i1
                for blockStart in stride(from: i1, to: i2, by: blockSize) {
                    let blockOffset = (blockStart / blockSize) * blockBytes
                    for r in 0..<count {
                        quantizeRow(type, w + r * n + blockStart, count: blockSize, importance: importance.map { $0 + blockStart },
                                    into: destination + r * rowBytes + blockOffset)
                    }
                    for i in blockStart..<blockStart + blockSize {
                        let pivot = u[i * n + i]
                        let tail = u + i * n + i + 1, tailCount = i2 - i - 1
                        for r in 0..<count {
                            let row = w + r * n
                            let target = row[i]
                            let q = roundElement(type, block: destination + r * rowBytes + blockOffset, index: i - blockStart, target: target)
                            let e = (target - q) / pivot
                            errors[r * width + i - i1] = e
                            let rest = row + i + 1
                            for j in 0..<tailCount { rest[j] -= e * tail[j] }
                        }
                    }
                }
                if i2 < n {
                    // W[:, i2...] -= E · U[i1..<i2, i2...]
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(count), Int32(n - i2), Int32(width), -1,
                                errors, Int32(width), u + i1 * n + i2, Int32(n), 1, w + i2, Int32(n))
                }
                i1 = i2
            }
        }
    }

    /// Σ over rows of (w - q)ᵀ H (w - q): the output error, summed over H's positions, that storing
    /// `quantized` (rows of `type`) instead of `original` causes.
    public static func weightedError(original: UnsafePointer<Float>, quantized: UnsafeRawPointer, rows: Int,
                                     type: GGMLType, hessian: Hessians.Matrix) -> Double {
        let n = hessian.columns, rowBytes = type.rowByteCount(n)!
        var difference = [Float](repeating: 0, count: rows * n)
        difference.withUnsafeMutableBufferPointer { d in
            for r in 0..<rows {
                dequantizeRow(type, quantized + r * rowBytes, count: n, into: d.baseAddress! + r * n)
                for c in 0..<n { d[r * n + c] = original[r * n + c] - d[r * n + c] }
            }
        }
        var product = [Float](repeating: 0, count: rows * n)
        hessian.values.withUnsafeBufferPointer { h in
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(n), Int32(n), 1,
                        difference, Int32(n), h.baseAddress!, Int32(n), 0, &product, Int32(n))
        }
        var total = 0.0
        for i in 0..<rows * n { total += Double(difference[i]) * Double(product[i]) }
        return total
    }
}
