import OuroModel

/// Per-column importance of each linear weight, as llama.cpp's imatrix: for every input column of a
/// matrix, the mean of x² over every row the matrix multiplied while running calibration tokens
/// (every position, every loop step, since the loop reuses the same weights).
public struct ImportanceMatrix: Sendable, Equatable {
    /// GGUF tensor name -> one value per input column.
    public var values: [String: [Float]]
    /// Calibration tokens the values were gathered on.
    public var tokens: Int

    public init(values: [String: [Float]], tokens: Int) {
        self.values = values
        self.tokens = tokens
    }

    /// Runs `tokens` through `weights` in windows of at most `window` positions (each window starts
    /// a fresh context) and gathers the mean squared input of every projection and of the output head.
    public static func collect(weights: OuroWeights, tokens: [Int], window: Int = 512) throws -> ImportanceMatrix {
        let collector = Collector()
        try runCalibration(weights: weights, tokens: tokens, window: window, observer: collector, progress: nil)
        var values: [String: [Float]] = [:]
        for (key, sum) in collector.sums {
            let count = Float(collector.rows[key] ?? 1)
            for name in key.tensors(config: weights.config) { values[name] = sum.map { Float($0 / Double(count)) } }
        }
        return ImportanceMatrix(values: values, tokens: tokens.count)
    }

    /// Sums in Double: millions of squares would lose low bits in Float.
    final class Collector: ActivationObserver {
        var sums: [CalibrationInput: [Double]] = [:]
        var rows: [CalibrationInput: Int] = [:]

        func observe(_ site: LinearInput, layer: Int?, rows pointer: UnsafePointer<Float>, count: Int, columns: Int) {
            let key = CalibrationInput(site: site, layer: layer)
            var sum = sums[key] ?? [Double](repeating: 0, count: columns)
            sums[key] = nil   // keep the array uniquely referenced while adding
            sum.withUnsafeMutableBufferPointer { s in
                for r in 0..<count {
                    let x = pointer + r * columns
                    for c in 0..<columns { s[c] += Double(x[c] * x[c]) }
                }
            }
            sums[key] = sum
            rows[key, default: 0] += count
        }
    }
}
