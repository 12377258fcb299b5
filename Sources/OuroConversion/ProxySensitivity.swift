import Foundation
import OuroModel
import Quantization

/// EXPERIMENTAL, not validated, not used by the CLI. A layer-local estimate of `SensitivitySearch`'s
/// measurement, so the search could scale: instead of one
/// looped forward pass per (tensor, candidate), each candidate costs one encoding and one H-weighted
/// error, Σ_rows (w - q)ᵀ H (w - q) / positions (the matrix's own output error under its calibration
/// inputs, every loop step counted). A tensor's *loop gain* — how much final-step KLD one unit of its
/// output error causes once the loop has compounded it — is measured once, with the full looped
/// measurement at one anchor type per tensor (its context type), and scales every other candidate:
///
///     KLD(tensor, type) ≈ error(tensor, type) / error(tensor, anchor) · KLD_full(tensor, anchor)
///
/// So the looped forwards drop from (tensors x candidates) to (tensors), and with `gainLayers` to a
/// few layers per role (the other layers take the gain of the nearest measured layer of that role).
/// token_embd has no input Hessian (its input is one-hot): its error is the plain squared error.
public struct ProxySensitivity {
    public var search: SensitivitySearch
    /// Layers whose gains are measured (nil: all). Others reuse the nearest measured layer's gain.
    public var gainLayers: [Int]?

    public init(search: SensitivitySearch, gainLayers: [Int]? = nil) {
        self.search = search
        self.gainLayers = gainLayers
    }

    /// Output error of `tensor` stored as `type` (with error compensation when the search has Hessians).
    func outputError(_ source: WeightTensor, _ name: String, _ type: GGMLType, _ hessians: Hessians) throws -> Double {
        let encoded = try search.encode(source, as: type, name)
        let original = source.floats()
        return original.withUnsafeBufferPointer { o in
            encoded.bytes.withUnsafeBytes { q -> Double in
                if let h = hessians.byTensor[name], h.columns == source.columns {
                    return ErrorCompensatingRounding.weightedError(original: o.baseAddress!, quantized: q.baseAddress!, rows: source.rows,
                                                                   type: type, hessian: h) / Double(max(h.rows, 1))
                }
                var total = 0.0
                let rowBytes = type.rowByteCount(source.columns)!
                var row = [Float](repeating: 0, count: source.columns)
                for r in 0..<source.rows {
                    row.withUnsafeMutableBufferPointer { dequantizeRow(type, q.baseAddress! + r * rowBytes, count: source.columns, into: $0.baseAddress!) }
                    for c in 0..<source.columns { let d = Double(o[r * source.columns + c] - row[c]); total += d * d }
                }
                return total
            }
        }
    }

    /// Estimated measurements for every (tensor, candidate) pair; `stepKLD` holds the final-step estimate only.
    public func measure(weights: OuroWeights, tokens: [Int], hessians: Hessians,
                        progress: ((String) -> Void)? = nil) throws -> [SensitivitySearch.Measurement] {
        let context = search.context ?? .uniform(.q4_K)
        let tensors = TensorNaming.expectedTensors(weights.config).filter(\.isQuantizable)
        // Anchors: the context type of each tensor whose gain is measured.
        var anchors: [String: GGMLType] = [:]
        for tensor in tensors where Self.layer(tensor.ggufName).map({ gainLayers?.contains($0) ?? true }) ?? true {
            anchors[tensor.ggufName] = search.contextType(tensor, context)
        }
        // Gains are measured with the tensor alone quantized: in a quantized context the context's own
        // KLD dominates each measurement (on the trained fixture the in-context gains ranked the full
        // in-context measurement with Spearman 0.36 only).
        var anchored = search
        anchored.only = anchors.mapValues { [$0] }
        anchored.context = nil
        let full = try anchored.measure(weights: weights, tokens: tokens, progress: progress)
        var gains: [String: Double] = [:]
        for m in full {
            let source = weights.tensor(m.tensor)!
            let error = try outputError(source, m.tensor, m.type, hessians)
            gains[m.tensor] = error > 0 ? m.finalKLD / error : 0
        }
        var results: [SensitivitySearch.Measurement] = []
        for tensor in tensors {
            guard let source = weights.tensor(tensor.ggufName) else { continue }
            let gain = gains[tensor.ggufName] ?? nearestGain(tensor.ggufName, gains)
            for type in search.candidates where type.rowByteCount(source.columns) != nil {
                let error = try outputError(source, tensor.ggufName, type, hessians)
                let bits = source.rows * type.rowByteCount(source.columns)! * 8
                results.append(.init(tensor: tensor.ggufName, type: type, bits: bits, stepKLD: [gain * error]))
            }
            source.releasePages()
        }
        return results
    }

    /// Measures (proxy) and allocates under `budget`.
    public func run(weights: OuroWeights, tokens: [Int], hessians: Hessians, budget: Double,
                    progress: ((String) -> Void)? = nil) throws -> SensitivitySearch.Result {
        let measurements = try measure(weights: weights, tokens: tokens, hessians: hessians, progress: progress)
        var elements: [String: Int] = [:]
        for tensor in TensorNaming.expectedTensors(weights.config) where tensor.isQuantizable {
            elements[tensor.ggufName] = tensor.elementCount
        }
        return SensitivitySearch.allocate(measurements, elements: elements, budget: budget)
    }

    static func layer(_ name: String) -> Int? {
        guard name.hasPrefix("blk.") else { return nil }
        return Int(name.dropFirst(4).prefix { $0 != "." })
    }

    /// The gain of the same role in the nearest measured layer.
    private func nearestGain(_ name: String, _ gains: [String: Double]) -> Double {
        guard let layer = Self.layer(name) else { return 0 }
        let role = name.drop { $0 != "." }.dropFirst().drop { $0 != "." }
        let measured = gains.keys.compactMap { key -> (Int, Double)? in
            guard let l = Self.layer(key), key.hasSuffix(String(role)) else { return nil }
            return (l, gains[key]!)
        }
        return measured.min { abs($0.0 - layer) < abs($1.0 - layer) }?.1 ?? 0
    }
}
