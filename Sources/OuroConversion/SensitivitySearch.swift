import Foundation
import OuroModel
import Quantization

/// The loop-aware bit allocation: a looped model applies the same weights at every loop step, so a
/// tensor's quantization error compounds step by step, and by different amounts for different tensors.
/// The search measures it directly: for each quantizable tensor and each candidate type it quantizes
/// only that tensor, runs the whole looped model on calibration tokens and records the KL divergence of
/// the last step's distribution from the unquantized model's. It then picks one type per tensor to
/// minimize the summed KLD under a bits-per-weight budget (greedy on KLD saved per extra bit).
public struct SensitivitySearch {
    public struct Measurement: Sendable, Equatable {
        public let tensor: String
        public let type: GGMLType
        /// Stored bits of the tensor in this type.
        public let bits: Int
        /// Mean KLD(unquantized ‖ quantized) of each loop step's distribution over the calibration positions.
        public let stepKLD: [Double]
        public var finalKLD: Double { stepKLD.last ?? 0 }
    }

    public struct Result: Sendable {
        public let recipe: QuantizationRecipe
        public let measurements: [Measurement]
        /// bits / elements over the quantizable tensors for the chosen types.
        public let bitsPerWeight: Double
        /// Sum of the chosen types' final-step KLDs (the additive objective the allocation minimized;
        /// measured in a context it counts the context's own KLD once per tensor).
        public let predictedKLD: Double
    }

    /// From 3.4375 bpw (Q3_K) up, so budgets below 4.5 bpw (IQ4_XS's 4.25, say) are reachable.
    public var candidates: [GGMLType] = [.q3_K, .iq4_xs, .q4_0, .iq4_nl, .q4_K, .q5_K, .q6_K, .q8_0]
    /// Positions per forward pass (each window is its own context).
    public var window = 256
    public var importance: ImportanceMatrix?
    /// When set, candidates with element codes are measured as the converter will write them: with
    /// error-compensating rounding under these Hessians.
    public var hessians: Hessians?
    public var damping = ErrorCompensatingRounding.defaultDamping
    /// When set, only these (tensor, types) pairs are measured (e.g. one anchor type per tensor).
    public var only: [String: [GGMLType]]?
    /// Measure in context: every other tensor quantized as this recipe (after block fallbacks) rather
    /// than unquantized, so errors that compound through the loop with the others' are counted.
    /// nil measures each tensor alone.
    public var context: QuantizationRecipe?

    public init(candidates: [GGMLType]? = nil, importance: ImportanceMatrix? = nil) {
        if let candidates { self.candidates = candidates }
        self.importance = importance
    }

    /// Measures every (tensor, candidate type) pair. Types whose blocks do not divide a tensor's rows
    /// are skipped for that tensor; F16 is always available as the ceiling.
    public func measure(weights original: OuroWeights, tokens: [Int], progress: ((String) -> Void)? = nil) throws -> [Measurement] {
        // Every matrix expanded to f32 once (and each candidate stored as the f32 values its encoding
        // decodes to): the same products, but straight BLAS instead of expanding tiles in every pass.
        let weights = try Self.expandedToF32(original)
        let windows = stride(from: 0, to: tokens.count, by: max(window, 1)).map { Array(tokens[$0..<min(tokens.count, $0 + window)]) }
        let reference = try windows.map { try logSoftmaxSteps(OuroRunner(weights: weights).forward(tokens: $0)) }
        var base = weights
        if let context {
            var replacements: [String: WeightTensor] = [:]
            for tensor in TensorNaming.expectedTensors(weights.config) where tensor.isQuantizable {
                guard let source = weights.tensor(tensor.ggufName) else { continue }
                replacements[tensor.ggufName] = try Self.f32(encode(source, as: contextType(tensor, context), tensor.ggufName))
            }
            base = try weights.replacing(replacements)
        }
        var results: [Measurement] = []
        for tensor in TensorNaming.expectedTensors(weights.config) where tensor.isQuantizable {
            guard let source = weights.tensor(tensor.ggufName) else { continue }
            for type in only?[tensor.ggufName] ?? (only == nil ? candidates : []) where type.rowByteCount(source.columns) != nil {
                let quantized = try base.replacing(tensor.ggufName, with: try Self.f32(encode(source, as: type, tensor.ggufName)))
                let runner = OuroRunner(weights: quantized)
                var sums = [Double](repeating: 0, count: weights.config.loopCount)
                var positions = 0
                for (w, window) in windows.enumerated() {
                    let out = try runner.forward(tokens: window)
                    let kld = Self.stepKLD(reference: reference[w], model: logSoftmaxSteps(out), vocab: out.vocab)
                    for s in sums.indices { sums[s] += kld[s] }
                    positions += window.count
                }
                let bits = source.rows * type.rowByteCount(source.columns)! * 8
                let m = Measurement(tensor: tensor.ggufName, type: type, bits: bits, stepKLD: sums.map { $0 / Double(positions) })
                results.append(m)
                progress?(String(format: "%@ %@: final KLD %.3e", tensor.ggufName, type.name, m.finalKLD))
            }
        }
        return results
    }

    func encode(_ source: WeightTensor, as type: GGMLType, _ name: String) throws -> WeightTensor {
        guard let h = hessians?.byTensor[name], h.columns == source.columns, supportsElementRounding(type) else {
            return try encoder(type, name).encode(source)
        }
        let factor = ErrorCompensatingRounding.factor(h, damping: damping)
        var floats = source.floats()
        let rowBytes = try type.checkedRowByteCount(source.columns)
        var bytes = [UInt8](repeating: 0, count: source.rows * rowBytes)
        let weights = importance?.values[name]
        floats.withUnsafeMutableBufferPointer { f in
            bytes.withUnsafeMutableBytes { b in
                if let weights {
                    weights.withUnsafeBufferPointer { w in
                        ErrorCompensatingRounding.quantize(rows: f.baseAddress!, count: source.rows, columns: source.columns, type: type,
                                                           factor: factor, importance: w.baseAddress!, into: b.baseAddress!)
                    }
                } else {
                    ErrorCompensatingRounding.quantize(rows: f.baseAddress!, count: source.rows, columns: source.columns, type: type,
                                                       factor: factor, importance: nil, into: b.baseAddress!)
                }
            }
        }
        return try WeightTensor(type: type, shape: source.shape, copying: bytes)
    }

    private func encoder(_ type: GGMLType, _ name: String) -> RowEncoder {
        RowEncoder(type: type, importance: importance?.values[name], searchedQ4_0: true)
    }

    func contextType(_ tensor: ExpectedTensor, _ recipe: QuantizationRecipe) -> GGMLType {
        let wanted = recipe.type(for: tensor.ggufName), columns = tensor.shape.last ?? 1
        return wanted.rowByteCount(columns) != nil ? wanted : ConversionPlan.fallback(for: wanted, columns: columns, source: .f32)
    }

    static func f32(_ tensor: WeightTensor) throws -> WeightTensor {
        let floats = tensor.floats()
        return try WeightTensor(type: .f32, shape: tensor.shape, copying: floats.withUnsafeBytes { Array($0) })
    }

    static func expandedToF32(_ weights: OuroWeights) throws -> OuroWeights {
        var replacements: [String: WeightTensor] = [:]
        for tensor in TensorNaming.expectedTensors(weights.config) where tensor.isQuantizable {
            if let w = weights.tensor(tensor.ggufName), w.type != .f32 { replacements[tensor.ggufName] = try f32(w) }
        }
        return try weights.replacing(replacements)
    }

    /// The smallest bits per weight any allocation can reach: every quantizable tensor in its cheapest
    /// candidate whose blocks fit its rows (F16 when none fits). A budget below it cannot be met.
    public func lowestBitsPerWeight(_ config: OuroConfiguration) -> Double {
        var bits = 0, elements = 0
        for tensor in TensorNaming.expectedTensors(config) where tensor.isQuantizable {
            let columns = tensor.shape.last ?? 1, rows = tensor.elementCount / max(columns, 1)
            let cheapest = candidates.compactMap { $0.rowByteCount(columns) }.min() ?? 2 * columns
            bits += rows * cheapest * 8
            elements += tensor.elementCount
        }
        return elements == 0 ? 0 : Double(bits) / Double(elements)
    }

    /// One type per tensor minimizing the summed final-step KLD with total bits <= budget x elements.
    /// Every tensor starts at its lowest-KLD type among its cheapest; the upgrade that saves the most
    /// KLD per extra bit and fits is then taken, until none fits or helps.
    public static func allocate(_ measurements: [Measurement], elements: [String: Int], budget: Double,
                                name: String = "loop") -> Result {
        let byTensor = Dictionary(grouping: measurements, by: \.tensor)
        var chosen: [String: Measurement] = [:]
        for (tensor, options) in byTensor {
            let cheapest = options.map(\.bits).min()!
            chosen[tensor] = options.filter { $0.bits == cheapest }.min { $0.finalKLD < $1.finalKLD }!
        }
        let totalElements = byTensor.keys.reduce(0) { $0 + (elements[$1] ?? 0) }
        let limit = Int((budget * Double(totalElements)).rounded(.down))
        var used = chosen.values.reduce(0) { $0 + $1.bits }
        while true {
            var best: (Measurement, Double)?
            for (tensor, current) in chosen {
                for option in byTensor[tensor]! where option.bits > current.bits && option.finalKLD < current.finalKLD {
                    let extra = option.bits - current.bits
                    guard used + extra <= limit else { continue }
                    let gain = (current.finalKLD - option.finalKLD) / Double(extra)
                    if best == nil || gain > best!.1 || (gain == best!.1 && option.tensor < best!.0.tensor) { best = (option, gain) }
                }
            }
            guard let (upgrade, _) = best else { break }
            used += upgrade.bits - chosen[upgrade.tensor]!.bits
            chosen[upgrade.tensor] = upgrade
        }
        let overrides = chosen.mapValues(\.type)
        let recipe = QuantizationRecipe(name: name, fileType: QuantizationRecipe.loopFileType,
                                        defaultType: mostCommon(overrides.values) ?? .q4_K, overrides: overrides, searchedQ4_0: true)
        return Result(recipe: recipe, measurements: measurements,
                      bitsPerWeight: totalElements == 0 ? 0 : Double(used) / Double(totalElements),
                      predictedKLD: chosen.values.reduce(0) { $0 + $1.finalKLD })
    }

    /// Measures and allocates in one go.
    public func run(weights: OuroWeights, tokens: [Int], budget: Double, progress: ((String) -> Void)? = nil) throws -> Result {
        let measurements = try measure(weights: weights, tokens: tokens, progress: progress)
        var elements: [String: Int] = [:]
        for tensor in TensorNaming.expectedTensors(weights.config) where tensor.isQuantizable {
            elements[tensor.ggufName] = tensor.elementCount
        }
        return Self.allocate(measurements, elements: elements, budget: budget)
    }

    private static func mostCommon(_ types: Dictionary<String, GGMLType>.Values) -> GGMLType? {
        Dictionary(grouping: types, by: { $0 }).max { $0.value.count < $1.value.count || ($0.value.count == $1.value.count && $0.key.rawValue > $1.key.rawValue) }?.key
    }

    /// Each step's logits as log-probabilities, [S][T*V].
    func logSoftmaxSteps(_ out: LoopOutputs) -> [[Float]] {
        out.stepLogits.map { logSoftmaxRows($0, tokens: out.tokens, vocab: out.vocab) }
    }

    /// Summed (over positions) KL(reference ‖ model) per step from log-probabilities.
    static func stepKLD(reference: [[Float]], model: [[Float]], vocab: Int) -> [Double] {
        zip(reference, model).map { ref, mod in
            var total = 0.0
            for i in ref.indices {
                let p = exp(Double(ref[i]))
                total += p * (Double(ref[i]) - Double(mod[i]))
            }
            return total
        }
    }
}

/// Log-softmax of each of `tokens` rows of `vocab` logits (max-shifted, sum in double).
func logSoftmaxRows(_ logits: [Float], tokens: Int, vocab v: Int) -> [Float] {
    var result = logits
    for t in 0..<tokens {
        let row = logits[t * v..<(t + 1) * v]
        let top = row.max() ?? 0
        let sum = row.reduce(0.0) { $0 + exp(Double($1 - top)) }
        let shift = Float(Double(top) + log(sum))
        for i in 0..<v { result[t * v + i] = logits[t * v + i] - shift }
    }
    return result
}
