/// Pure comparison functions over flat row-major float arrays. Everything accumulates in Double:
/// logits of a 50k vocabulary summed in Float lose the small differences being measured.
public enum ParityMetrics {
    /// max |a[i] - b[i]|; NaN anywhere gives +infinity so a broken model can never pass.
    public static func maxAbsError(_ a: [Float], _ b: [Float]) -> Double {
        precondition(a.count == b.count, "maxAbsError: length mismatch")
        var worst = 0.0
        for i in a.indices {
            let d = abs(Double(a[i]) - Double(b[i]))
            if d.isNaN { return .infinity }
            worst = max(worst, d)
        }
        return worst
    }

    /// ||model - reference|| / ||reference||  (0 when both are zero).
    public static func relativeRMSError(model: [Float], reference: [Float]) -> Double {
        precondition(model.count == reference.count, "relativeRMSError: length mismatch")
        var diff = 0.0, norm = 0.0
        for i in model.indices {
            let r = Double(reference[i])
            let d = Double(model[i]) - r
            diff += d * d
            norm += r * r
        }
        if norm == 0 { return diff == 0 ? 0 : .infinity }
        return (diff / norm).squareRoot()
    }

    /// log softmax of one row.
    public static func logSoftmax(_ row: ArraySlice<Float>) -> [Double] {
        let z = logSumExp(row)
        return row.map { Double($0) - z }
    }

    /// log of the sum of exp over a row, shifted by its maximum so exp() cannot overflow.
    public static func logSumExp(_ row: ArraySlice<Float>) -> Double {
        var top = -Double.infinity
        for x in row { top = max(top, Double(x)) }
        if !top.isFinite { return top }
        var sum = 0.0
        for x in row { sum += _exp(Double(x) - top) }
        return top + _log(sum)
    }

    /// KL(reference || model) of the softmax distributions of two logit rows, in nats:
    /// sum p_i (log p_i - log q_i) with log p_i = a_i - logsumexp(a).
    public static func klDivergence(reference: ArraySlice<Float>, model: ArraySlice<Float>) -> Double {
        precondition(reference.count == model.count, "klDivergence: length mismatch")
        let zp = logSumExp(reference), zq = logSumExp(model)
        var kl = 0.0
        for (a, b) in zip(reference, model) where a > -Float.infinity {
            let logp = Double(a) - zp
            kl += _exp(logp) * (logp - (Double(b) - zq))
        }
        if kl.isNaN { return .infinity }
        return max(kl, 0)   // rounding can make a true 0 slightly negative
    }

    /// KL(reference || model) for each of the `rows` rows of width `width`.
    public static func rowKL(reference: [Float], model: [Float], rows: Int, width: Int) -> [Double] {
        (0..<rows).map { r in
            let range = r * width..<(r + 1) * width
            return klDivergence(reference: reference[range], model: model[range])
        }
    }

    /// Index of the largest element; the first one on ties, as torch.argmax. NaN rows give -1.
    public static func argmax(_ row: ArraySlice<Float>) -> Int {
        var best = -1
        var bestValue = -Float.infinity
        for (i, x) in zip(row.indices, row) where x > bestValue || (best < 0 && x == bestValue) {
            best = i - row.startIndex
            bestValue = x
        }
        return best
    }

    /// Number of rows whose argmax agrees.
    public static func top1Matches(reference: [Float], model: [Float], rows: Int, width: Int) -> Int {
        (0..<rows).filter { r in
            let range = r * width..<(r + 1) * width
            let a = argmax(reference[range])
            return a >= 0 && a == argmax(model[range])
        }.count
    }

    /// Nearest-rank percentile: the smallest value with at least `fraction` of the values <= it,
    /// i.e. sorted[ceil(fraction * n) - 1]. p99 of 100 values is the 99th smallest. 0 for no values.
    public static func percentile(_ values: [Double], _ fraction: Double) -> Double {
        percentile(sorted: values.sorted(), fraction)
    }

    /// `percentile` of values already sorted ascending (one sort serves every percentile).
    public static func percentile(sorted: [Double], _ fraction: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let rank = Int((fraction * Double(sorted.count)).rounded(.up))
        return sorted[min(max(rank, 1), sorted.count) - 1]
    }

    /// The middle value of values sorted ascending; the mean of the two middle ones for an even count.
    public static func median(sorted: [Double]) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let mid = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
    }

    /// Summed cross-entropy (nats) of `labels` under the row softmax, and the number of scored rows.
    /// Negative labels are skipped (Hugging Face's -100 ignore index).
    public static func crossEntropy(logits: [Float], labels: [Int], width: Int) -> (sum: Double, count: Int) {
        var sum = 0.0, count = 0
        for (r, label) in labels.enumerated() where label >= 0 && label < width {
            let row = logits[r * width..<(r + 1) * width]
            sum += logSumExp(row) - Double(row[row.startIndex + label])
            count += 1
        }
        return (sum, count)
    }
}

// Foundation-free exp/log (Glibc/Darwin), kept private to this file's callers.
#if canImport(Glibc)
import Glibc
@inline(__always) func _exp(_ x: Double) -> Double { Glibc.exp(x) }
@inline(__always) func _log(_ x: Double) -> Double { Glibc.log(x) }
#elseif canImport(Darwin)
import Darwin
@inline(__always) func _exp(_ x: Double) -> Double { Darwin.exp(x) }
@inline(__always) func _log(_ x: Double) -> Double { Darwin.log(x) }
#endif
