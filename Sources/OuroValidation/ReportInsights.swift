/// What the HTML report draws beyond the numbers: where the model exits, how per-position KLD is
/// spread, and the positions where the model is furthest from the reference.

/// Mean exit probability per loop step (index 0 = loop step 1) over all positions.
public struct ExitDistribution: Codable, Sendable, Equatable {
    public var model: [Double]
    public var reference: [Double]
}

/// Counts of per-position final KLD in half-decade bins: bin i holds values in
/// [lowerBounds[i], lowerBounds[i+1]) and the last bin everything from its bound up.
public struct KLDHistogram: Codable, Sendable, Equatable {
    public var lowerBounds: [Double]
    public var counts: [Int]

    enum CodingKeys: String, CodingKey { case counts, lowerBounds = "lower_bounds" }

    /// 0, then 1e-6, 3.16e-6, 1e-5 ... 10.
    public static let standardBounds: [Double] = [0] + (-12...2).map { _pow10(Double($0) / 2) }

    public init(values: [Double], lowerBounds: [Double] = KLDHistogram.standardBounds) {
        self.lowerBounds = lowerBounds
        var counts = [Int](repeating: 0, count: lowerBounds.count)
        for v in values {
            // NaN/inf (a broken model) land in the top bin.
            let bin = v.isFinite ? (lowerBounds.lastIndex { $0 <= v } ?? 0) : lowerBounds.count - 1
            counts[bin] += 1
        }
        self.counts = counts
    }
}

/// A token and its softmax probability.
public struct Candidate: Codable, Sendable, Equatable {
    public var id: Int
    public var probability: Double
    public var text: String?
}

/// One of the positions with the largest final KLD.
public struct WorstPosition: Codable, Sendable, Equatable {
    public var prompt: Int
    public var position: Int
    public var kld: Double
    /// Up to `contextTokens` ids ending with the token at `position` (the one whose successor is predicted).
    public var context: [Int]
    public var contextText: String?
    /// The true next token when the reference has labels.
    public var label: Int?
    public var labelText: String?
    public var referenceTop: [Candidate]
    public var modelTop: [Candidate]

    enum CodingKeys: String, CodingKey {
        case prompt, position, kld, context, label
        case contextText = "context_text", labelText = "label_text", referenceTop = "reference_top", modelTop = "model_top"
    }
}

/// Keeps the `capacity` positions with the largest KLD seen so far.
struct WorstPositions {
    let capacity: Int
    let contextTokens = 24
    private(set) var items: [WorstPosition] = []

    init(capacity: Int) { self.capacity = capacity }

    /// Offers one prompt's final logits and per-position KLD.
    mutating func offer(prompt: Int, inputIDs: [Int], labels: [Int]?, kl: [Double],
                        model: [Float], reference: [Float], vocab v: Int) {
        guard capacity > 0 else { return }
        let order = kl.indices.sorted { kl[$0] > kl[$1] }.prefix(capacity)
        for t in order {
            let value = kl[t].isNaN ? Double.infinity : kl[t]
            if items.count == capacity, let smallest = items.last, !(value > smallest.kld) { break }
            let row = t * v..<(t + 1) * v
            let label = labels.flatMap { t < $0.count && $0[t] >= 0 ? $0[t] : nil }
            items.append(WorstPosition(
                prompt: prompt, position: t, kld: value,
                context: Array(inputIDs[max(0, t + 1 - contextTokens)...t]), contextText: nil, label: label, labelText: nil,
                referenceTop: Self.top(reference[row], 5), modelTop: Self.top(model[row], 5)))
            items.sort { $0.kld > $1.kld }
            if items.count > capacity { items.removeLast() }
        }
    }

    /// The k most probable tokens of one logit row.
    static func top(_ row: ArraySlice<Float>, _ k: Int) -> [Candidate] {
        let z = ParityMetrics.logSumExp(row)
        var best: [(Int, Float)] = []
        for (i, x) in zip(0..., row) where best.count < k || x > best[best.count - 1].1 {
            best.append((i, x))
            best.sort { $0.1 > $1.1 }
            if best.count > k { best.removeLast() }
        }
        return best.map { Candidate(id: $0.0, probability: _exp(Double($0.1) - z), text: nil) }
    }
}

#if canImport(Glibc)
import Glibc
@inline(__always) func _pow10(_ x: Double) -> Double { Glibc.pow(10, x) }
#elseif canImport(Darwin)
import Darwin
@inline(__always) func _pow10(_ x: Double) -> Double { Darwin.pow(10, x) }
#endif
