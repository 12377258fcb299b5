import COpenBLAS
import Foundation
import OuroModel

/// Per linear input, H = Σ x xᵀ over every calibration position **and every loop step** (a looped
/// model multiplies the same weight by a different input distribution at each step, and all of them
/// count). A weight row w quantized to q then costs (w - q)ᵀ H (w - q) in output error summed over
/// those positions: what error-compensating rounding minimizes. Projections that share an input
/// (q/k/v, gate/up) share one H. The diagonal divided by the row count is the imatrix.
public struct Hessians: @unchecked Sendable {
    /// One input's H, `columns` x `columns` row-major, summed over `rows` input rows.
    public final class Matrix: @unchecked Sendable {
        public let columns: Int
        public internal(set) var rows: Int = 0
        public internal(set) var values: [Float]
        init(columns: Int) {
            self.columns = columns
            values = [Float](repeating: 0, count: columns * columns)
        }
    }

    /// GGUF tensor name -> the H of its input.
    public var byTensor: [String: Matrix]
    public var tokens: Int

    /// Runs `tokens` through `weights` in windows (each a fresh context) and accumulates every
    /// linear input's H. `progress(done, total)` after each window.
    public static func collect(weights: OuroWeights, tokens: [Int], window: Int = 512,
                               progress: ((Int, Int) -> Void)? = nil) throws -> Hessians {
        let collector = Collector()
        try runCalibration(weights: weights, tokens: tokens, window: window, observer: collector, progress: progress)
        var byTensor: [String: Matrix] = [:]
        for (key, matrix) in collector.matrices {
            matrix.symmetrize()
            for name in key.tensors(config: weights.config) { byTensor[name] = matrix }
        }
        return Hessians(byTensor: byTensor, tokens: tokens.count)
    }

    /// The imatrix these Hessians imply: diag(H) / rows (mean x² per column).
    public var importance: ImportanceMatrix {
        ImportanceMatrix(values: byTensor.mapValues { m in
            (0..<m.columns).map { m.values[$0 * m.columns + $0] / Float(max(m.rows, 1)) }
        }, tokens: tokens)
    }

    final class Collector: ActivationObserver {
        var matrices: [CalibrationInput: Matrix] = [:]
        /// Inputs to gather; nil: all of them.
        var accepts: ((CalibrationInput) -> Bool)?

        func observe(_ site: LinearInput, layer: Int?, rows pointer: UnsafePointer<Float>, count: Int, columns: Int) {
            let key = CalibrationInput(site: site, layer: layer)
            if let accepts, !accepts(key) { return }
            let matrix = matrices[key] ?? Matrix(columns: columns)
            matrices[key] = matrix
            // Upper triangle only (row-major): H += Xᵀ X.
            matrix.values.withUnsafeMutableBufferPointer { h in
                cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, Int32(columns), Int32(count), 1,
                            pointer, Int32(columns), 1, h.baseAddress!, Int32(columns))
            }
            matrix.rows += count
        }
    }
}

extension Hessians.Matrix {
    /// Copies the upper triangle into the lower one.
    func symmetrize() {
        let n = columns
        values.withUnsafeMutableBufferPointer { h in
            for i in 0..<n { for j in 0..<i { h[i * n + j] = h[j * n + i] } }
        }
    }
}

extension Hessians {
    /// diag(H) / rows of one tensor's input: its imatrix column vector.
    public func importance(of tensor: String) -> [Float]? {
        guard let m = byTensor[tensor] else { return nil }
        return (0..<m.columns).map { m.values[$0 * m.columns + $0] / Float(max(m.rows, 1)) }
    }
}
