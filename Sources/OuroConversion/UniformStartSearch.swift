import Foundation
import OuroModel
import Quantization

/// The loop preset's allocation (`--type loop --bpw B`): start from the best uniform type the budget
/// affords and move a tensor off it only on evidence.
///
/// The earlier search (`SensitivitySearch.allocate`) gave every tensor its own type from per-tensor
/// measurements whose differences were below their noise, and lost on held-out text to uniform
/// `q4_k --gptq` (Docs/QUANTIZATION.md). Here:
/// 1. The base is the uniform type whose size (after block fallbacks) is nearest the budget, every
///    tensor encoded as the converter will write it (GPTQ codes when Hessians are given).
/// 2. If the base is over the budget, tensors are downgraded one at a time, the smallest measured loss
///    in final-step KLD per bit saved first, until it fits (forced moves: no margin).
/// 3. If bits are left, a unit (token_embd, output, or one layer matrix role in every layer: see
///    `movesWholeRoles`) is upgraded when its move cuts the compounding error (final step - step 1) by
///    more than `growthMargin` standard errors, then when its paired per-position final-step KLD
///    improvement exceeds `margin` standard errors; the largest improvement per extra bit first, and
///    none that would raise the predicted growth above `growthCap` times the base's (`growthCap`).
///
/// Each move is measured in the base context: the whole looped model with that tensor or role changed, on
/// the calibration tokens, KL(unquantized ‖ model) of the final loop step per position. A budget equal
/// to the base's size (IQ4_NL at 4.5 bpw) needs no forward at all.
public struct UniformStartSearch {
    /// Bases, in order of preference among equal sizes (later wins): IQ4_NL is the 4.5-bpw base because
    /// with GPTQ it agreed on the top-1 token more often than Q4_K on the selection set and on
    /// training-split text, for two calibration seeds (Docs/QUANTIZATION.md).
    public var bases: [GGMLType] = [.q3_K, .iq4_xs, .q4_0, .q4_K, .iq4_nl, .q5_K, .q6_K, .q8_0]
    /// Types a single tensor may move to.
    public var moves: [GGMLType] = [.q3_K, .iq4_xs, .q4_0, .iq4_nl, .q4_K, .q5_K, .q6_K, .q8_0]
    /// An upgrade must improve the mean final KLD by more than this many standard errors of the paired
    /// per-position difference.
    public var margin = 3.0
    /// Upgrade a layer matrix only together with the same matrix of every other layer
    /// (`blk.*.ffn_up.weight` as one unit; downgrades stay per tensor). At 5.0 bpw on the trained
    /// fixture single-layer upgrades changed the calibration final-step KLD by less than 3 standard
    /// errors (all but token_embd's, a near-constant error at every loop step): the search took
    /// token_embd alone, left 0.38 bpw unused, and the step 1 -> 4 growth was 2x on held-out text.
    /// A role in every layer is one looped effect, 4x the size (24x at 1.4B) for one forward, so
    /// layer upgrades can clear the margin, and the search measures 22 moves instead of 82.
    public var movesWholeRoles = true
    /// After the final-step upgrades, spend the bits left on moves that cut the compounding error
    /// (final step - step 1) by more than this many standard errors (nil: no second phase).
    public var growthMargin: Double? = 2.0
    /// No upgrade may raise the predicted growth (final-step mean KLD over step 1's, on the calibration
    /// tokens, the base's per-step means plus the chosen moves' paired changes) above this multiple of
    /// the base's own (nil: no cap). With a cap the compounding moves come first. The uniform GPTQ
    /// bases meet the growth goal; at 5.0 bpw the final-step upgrades (token_embd, output: a nearly
    /// step-constant error) left a 1.87x growth on held-out text (Docs/QUANTIZATION.md).
    public var growthCap: Double? = 1.0
    /// With bits to spend and a tie between bases of the same size, this one: with the Q4_K base the
    /// calibration tokens see token_embd's and output's gains as step-constant, as the selection set
    /// does, so the growth cap can tell them from the compounding moves; with the IQ4_NL base they
    /// measured token_embd's gain as mostly compounding (the cap could not exclude it; its file grew
    /// 1.99x on selection).
    public var upgradeBase: GGMLType? = .q4_K
    /// Positions per forward pass (each window is its own context).
    public var window = 256
    public var importance: ImportanceMatrix?
    public var hessians: Hessians?
    public var damping = ErrorCompensatingRounding.defaultDamping

    public init() {}

    /// One measured move: a tensor (or a unit of tensors, `members`) from the base's type to another,
    /// in the base context.
    public struct Move: Sendable {
        /// The unit moved: a tensor's name, or `blk.*.<role>.weight` for a role in every layer.
        public let tensor: String
        /// The tensors the move changes (`[tensor]` for a single tensor).
        public let members: [String]
        public let type: GGMLType
        /// Stored bits of the tensor in `type` (after its block fallback).
        public let bits: Int
        /// Final-step KLD per calibration position with this tensor moved.
        public let kld: [Float]
        /// KLD per loop step (outer) and calibration position (inner); the last is `kld`.
        public let steps: [[Float]]
        public init(tensor: String, type: GGMLType, bits: Int, kld: [Float], steps: [[Float]]? = nil, members: [String]? = nil) {
            self.tensor = tensor
            self.members = members ?? [tensor]
            self.type = type
            self.bits = bits
            self.kld = kld
            self.steps = steps ?? [kld]
        }
    }

    public struct Result: Sendable {
        public let recipe: QuantizationRecipe
        public let base: GGMLType
        public let bitsPerWeight: Double
        /// Mean final-step KLD on the calibration tokens of the base alone (nil when nothing was measured).
        public let baseKLD: Double?
        /// The moves taken, in order.
        public let taken: [Move]
        /// Forward passes (over all windows) the search ran.
        public let forwards: Int
    }

    /// The type `type` becomes on rows of `columns` (ggml's block fallback), as the converter writes it.
    static func planned(_ type: GGMLType, columns: Int) -> GGMLType {
        type.rowByteCount(columns) != nil ? type : ConversionPlan.fallback(for: type, columns: columns, source: .f32)
    }

    /// The unit a tensor moves with: `blk.*.<role>` for a layer matrix when `movesWholeRoles`, else itself.
    func unit(_ name: String) -> String {
        guard movesWholeRoles, name.hasPrefix("blk.") else { return name }
        let parts = name.split(separator: ".", maxSplits: 2)
        return parts.count == 3 ? "blk.*." + parts[2] : name
    }

    static func bits(_ type: GGMLType, _ tensor: ExpectedTensor) -> Int {
        let columns = tensor.shape.last ?? 1, rows = tensor.elementCount / max(columns, 1)
        let t = planned(type, columns: columns)
        return rows * (t.rowByteCount(columns) ?? 4 * columns) * 8
    }

    /// The base for `budget`: the base type whose size is nearest the budget, above or below (equal
    /// sizes: the later base, but `upgradeBase` when the budget is above that size). Below, the bits left go to measured upgrades; above, the fewest forced
    /// downgrades bring it under (IQ4_XS at 4.25 when some rows fall back to IQ4_NL, rather than Q3_K
    /// plus upgrades that must clear the noise).
    public func base(for budget: Double, config: OuroConfiguration) -> GGMLType {
        let tensors = TensorNaming.expectedTensors(config).filter(\.isQuantizable)
        let elements = tensors.reduce(0) { $0 + $1.elementCount }
        var best: (type: GGMLType, distance: Double, size: Double)?
        for type in bases {
            let size = Double(tensors.reduce(0) { $0 + Self.bits(type, $1) }) / Double(max(elements, 1))
            let distance = abs(size - budget)
            if let b = best, distance > b.distance + 1e-12 { continue }
            if let b = best, abs(distance - b.distance) <= 1e-12, b.size < budget, b.type == upgradeBase { continue }
            best = (type, distance, size)
        }
        return best!.type
    }

    /// Chooses types from measured moves. `baseKLD` is the base's per-position final KLD; `baseBits`
    /// each tensor's bits in the base; `limit` the total bits allowed. Pure, so it is testable alone.
    public static func choose(base: GGMLType, baseKLD: [Float], baseSteps: [[Float]]? = nil, baseBits: [String: Int], moves: [Move],
                              limit: Int, margin: Double, growthMargin: Double? = nil,
                              growthCap: Double? = nil) -> (types: [String: GGMLType], taken: [Move], bits: Int) {
        var current: [String: (type: GGMLType, bits: Int, kld: [Float], steps: [[Float]])] = [:]
        for (tensor, bits) in baseBits { current[tensor] = (base, bits, baseKLD, baseSteps ?? [baseKLD]) }
        var used = baseBits.values.reduce(0, +)
        var taken: [Move] = []
        let byTensor = Dictionary(grouping: moves, by: \.tensor)
        // Forced downgrades: least loss per bit saved first.
        while used > limit {
            var best: (Move, Double)?
            for (tensor, options) in byTensor {
                let now = current[tensor]!
                for option in options where option.bits < now.bits {
                    let loss = meanDifference(option.kld, now.kld).mean / Double(now.bits - option.bits)
                    if best == nil || loss < best!.1 || (loss == best!.1 && option.tensor < best!.0.tensor) { best = (option, loss) }
                }
            }
            guard let (move, _) = best else { break }
            used += move.bits - current[move.tensor]!.bits
            current[move.tensor] = (move.type, move.bits, move.kld, move.steps)
            taken.append(move)
        }
        // Predicted mean KLD per loop step of the current choice: the base's plus each chosen move's
        // paired change (moves are measured in the base context, so their changes add).
        var predicted = (baseSteps ?? [baseKLD]).map(mean)
        let growthLimit = growthCap.map { $0 * growth(predicted) }
        func predictedAfter(_ option: Move, replacing now: [[Float]]) -> [Double] {
            guard option.steps.count == predicted.count, now.count == predicted.count else { return predicted }
            return predicted.indices.map { predicted[$0] + mean(option.steps[$0]) - mean(now[$0]) }
        }
        // Takes upgrades that fit the budget while any has a gain (nil: not eligible), the largest gain
        // per extra bit first (ties: the tensor name). With `growthCap`, never one whose predicted
        // growth (final step over step 1) would exceed the cap times the base's.
        func takeUpgrades(gain: (_ now: [Float], _ nowSteps: [[Float]], _ option: Move) -> Double?) {
            while true {
                var best: (Move, Double)?
                for (tensor, options) in byTensor {
                    let now = current[tensor]!
                    for option in options where option.bits > now.bits && used + option.bits - now.bits <= limit {
                        if let growthLimit, growth(predictedAfter(option, replacing: now.steps)) > growthLimit + 1e-12 { continue }
                        guard let g = gain(now.kld, now.steps, option) else { continue }
                        let perBit = g / Double(option.bits - now.bits)
                        if best == nil || perBit > best!.1 || (perBit == best!.1 && option.tensor < best!.0.tensor) { best = (option, perBit) }
                    }
                }
                guard let (move, _) = best else { return }
                predicted = predictedAfter(move, replacing: current[move.tensor]!.steps)
                used += move.bits - current[move.tensor]!.bits
                current[move.tensor] = (move.type, move.bits, move.kld, move.steps)
                taken.append(move)
            }
        }
        // Upgrades only beyond `margin` standard errors on the final step.
        func takeFinalStepUpgrades() {
            takeUpgrades { nowKLD, _, option in
                let d = meanDifference(nowKLD, option.kld)
                return d.mean > 0 && d.mean > margin * d.stderr ? d.mean : nil
            }
        }
        // Moves that cut the compounding part of the error (final step - first step, per position) by
        // more than `growthMargin` standard errors without raising the final step's mean; largest cut
        // per bit first.
        func takeCompoundingUpgrades() {
            guard let growthMargin else { return }
            func compounding(_ steps: [[Float]]) -> [Float] {
                guard let first = steps.first, let last = steps.last, steps.count > 1 else { return [] }
                return zip(last, first).map { $0 - $1 }
            }
            takeUpgrades { nowKLD, nowSteps, option in
                let nowGrowth = compounding(nowSteps), optionGrowth = compounding(option.steps)
                guard !nowGrowth.isEmpty, optionGrowth.count == nowGrowth.count,
                      meanDifference(nowKLD, option.kld).mean >= 0 else { return nil }
                let d = meanDifference(nowGrowth, optionGrowth)
                return d.mean > 0 && d.mean > growthMargin * d.stderr ? d.mean : nil
            }
        }
        if growthCap == nil {
            // The final step first; the bits left go to the compounding error.
            takeFinalStepUpgrades()
            takeCompoundingUpgrades()
        } else {
            // The compounding error first (it lowers the growth, making room under the cap), then
            // final-step moves the cap allows (a step-constant cut such as token_embd's lowers step 1
            // most and raises the growth), then the compounding moves the bits still allow.
            takeCompoundingUpgrades()
            takeFinalStepUpgrades()
            takeCompoundingUpgrades()
        }
        return (current.mapValues(\.type), taken, used)
    }

    static func mean(_ values: [Float]) -> Double {
        values.reduce(0.0) { $0 + Double($1) } / Double(max(values.count, 1))
    }

    /// Final step's mean over step 1's (1 for a single step or a zero first step).
    static func growth(_ stepMeans: [Double]) -> Double {
        guard stepMeans.count > 1, let first = stepMeans.first, first > 0 else { return 1 }
        return stepMeans.last! / first
    }

    /// The recipe's per-tensor overrides from the chosen type of each unit: a role's type goes to every
    /// tensor of it (`members`; a unit not listed is a tensor's own name); units left at `base` add none.
    static func overrides(_ types: [String: GGMLType], base: GGMLType, members: [String: [String]]) -> [String: GGMLType] {
        var result: [String: GGMLType] = [:]
        for (unit, type) in types where type != base {
            for tensor in members[unit] ?? [unit] { result[tensor] = type }
        }
        return result
    }

    /// Mean and standard error of a - b over positions.
    static func meanDifference(_ a: [Float], _ b: [Float]) -> (mean: Double, stderr: Double) {
        let n = min(a.count, b.count)
        guard n > 1 else { return (n == 1 ? Double(a[0] - b[0]) : 0, .infinity) }
        var sum = 0.0, sum2 = 0.0
        for i in 0..<n { let d = Double(a[i]) - Double(b[i]); sum += d; sum2 += d * d }
        let mean = sum / Double(n)
        let variance = max(0, sum2 / Double(n) - mean * mean) * Double(n) / Double(n - 1)
        return (mean, (variance / Double(n)).squareRoot())
    }

    /// How many moves (one tensor, or one role in every layer) `run` will measure (one looped forward each) for `budget`; 0 when
    /// the base is the budget and the search is `base` everywhere with no forward.
    public func measuredMoves(for budget: Double, config: OuroConfiguration) -> Int {
        plan(TensorNaming.expectedTensors(config).filter(\.isQuantizable), budget: budget, config: config).planned.count
    }

    /// The moves worth measuring: cheaper ones only when over budget, dearer ones only when bits are left.
    /// `baseBits` is keyed by unit (a tensor, or a role in every layer).
    private func plan(_ tensors: [ExpectedTensor], budget: Double, config: OuroConfiguration)
        -> (planned: [(unit: String, members: [ExpectedTensor], type: GGMLType)], baseBits: [String: Int], limit: Int) {
        let elements = tensors.reduce(0) { $0 + $1.elementCount }
        let limit = Int((budget * Double(elements)).rounded(.down))
        let base = self.base(for: budget, config: config)
        // Whole roles for upgrades only: a forced downgrade should save just the bits needed, and a
        // role's worth overshoots (4.13 bpw written for a 4.25 budget on the trained fixture, worse on
        // held-out text than the 4.21 that single-tensor downgrades reach).
        let upgrading = tensors.reduce(0) { $0 + Self.bits(base, $1) } < limit
        var units: [String] = [], members: [String: [ExpectedTensor]] = [:]
        for tensor in tensors {
            let u = upgrading ? unit(tensor.ggufName) : tensor.ggufName
            if members[u] == nil { units.append(u) }
            members[u, default: []].append(tensor)
        }
        var baseBits: [String: Int] = [:]
        for u in units { baseBits[u] = members[u]!.reduce(0) { $0 + Self.bits(base, $1) } }
        let baseTotal = baseBits.values.reduce(0, +)
        var planned: [(unit: String, members: [ExpectedTensor], type: GGMLType)] = []
        for u in units {
            let group = members[u]!, columns = group[0].shape.last ?? 1
            let now = Self.planned(base, columns: columns)
            var seen: Set<GGMLType> = [now]
            for type in moves {
                let t = Self.planned(type, columns: columns), b = group.reduce(0) { $0 + Self.bits(type, $1) }
                guard !seen.contains(t), t != .f16, t != .f32 else { continue }
                let cheaper = b < baseBits[u]!, dearer = b > baseBits[u]!
                if (baseTotal > limit && cheaper) || (baseTotal < limit && dearer && baseTotal + b - baseBits[u]! <= limit) {
                    planned.append((u, group, t))
                    seen.insert(t)
                }
            }
        }
        return (planned, baseBits, limit)
    }

    /// Runs the search. `progress(done, total, detail)` after each measured move.
    public func run(weights original: OuroWeights, tokens: [Int], budget: Double, name: String = "loop",
                    progress: ((Int, Int, String) -> Void)? = nil) throws -> Result {
        let config = original.config
        let tensors = TensorNaming.expectedTensors(config).filter(\.isQuantizable).filter { original.tensor($0.ggufName) != nil }
        let (planned, baseBits, limit) = plan(tensors, budget: budget, config: config)
        let elements = tensors.reduce(0) { $0 + $1.elementCount }
        let base = self.base(for: budget, config: config)
        let baseTotal = baseBits.values.reduce(0, +)
        var recipe = QuantizationRecipe(name: name, fileType: QuantizationRecipe.loopFileType, defaultType: base, searchedQ4_0: true)
        guard !planned.isEmpty else {
            return Result(recipe: recipe, base: base, bitsPerWeight: Double(baseTotal) / Double(max(elements, 1)),
                          baseKLD: nil, taken: [], forwards: 0)
        }

        var measured: [Move] = []
        var encoder = SensitivitySearch()
        encoder.importance = importance
        encoder.hessians = hessians
        encoder.damping = damping
        let weights = try SensitivitySearch.expandedToF32(original)
        let windows = stride(from: 0, to: tokens.count, by: max(window, 1)).map { Array(tokens[$0..<min(tokens.count, $0 + window)]) }
        let reference = try windows.map { try Self.stepLogProbabilities(OuroRunner(weights: weights).forward(tokens: $0)) }
        var baseTensors: [String: WeightTensor] = [:]
        for tensor in tensors {
            let source = weights.tensor(tensor.ggufName)!
            baseTensors[tensor.ggufName] = try SensitivitySearch.f32(encoder.encode(source, as: Self.planned(base, columns: source.columns), tensor.ggufName))
        }
        let context = try weights.replacing(baseTensors)
        func perStepKLD(_ model: OuroWeights) throws -> [[Float]] {
            let runner = OuroRunner(weights: model)
            var result: [[Float]] = []
            for (w, window) in windows.enumerated() {
                let logp = try Self.stepLogProbabilities(runner.forward(tokens: window))
                if result.isEmpty { result = Array(repeating: [], count: logp.count) }
                for s in logp.indices {
                    result[s] += Self.positionKLD(reference: reference[w][s], model: logp[s], vocab: config.vocabSize, positions: window.count)
                }
            }
            return result
        }
        let baseSteps = try perStepKLD(context)
        for (i, (unit, group, type)) in planned.enumerated() {
            var changed: [String: WeightTensor] = [:]
            for tensor in group {
                let source = weights.tensor(tensor.ggufName)!
                changed[tensor.ggufName] = try SensitivitySearch.f32(encoder.encode(source, as: type, tensor.ggufName))
            }
            let moved = try context.replacing(changed)
            let steps = try perStepKLD(moved), kld = steps.last ?? []
            let move = Move(tensor: unit, type: type, bits: group.reduce(0) { $0 + Self.bits(type, $1) }, kld: kld, steps: steps,
                            members: group.map(\.ggufName))
            measured.append(move)
            let d = Self.meanDifference(kld, baseSteps.last ?? [])
            progress?(i + 1, planned.count, String(format: "%@ %@: final KLD %+.2e ± %.1e vs %@", unit, type.name, d.mean, d.stderr, base.name))
        }
        let baseKLD = baseSteps.last ?? []
        let chosen = Self.choose(base: base, baseKLD: baseKLD, baseSteps: baseSteps, baseBits: baseBits, moves: measured, limit: limit,
                                 margin: margin, growthMargin: growthMargin, growthCap: growthCap)
        recipe.overrides = Self.overrides(chosen.types, base: base,
                                          members: Dictionary(planned.map { ($0.unit, $0.members.map(\.ggufName)) }, uniquingKeysWith: { a, _ in a }))
        let mean = baseKLD.reduce(0.0) { $0 + Double($1) } / Double(max(baseKLD.count, 1))
        return Result(recipe: recipe, base: base, bitsPerWeight: Double(chosen.bits) / Double(max(elements, 1)),
                      baseKLD: mean, taken: chosen.taken, forwards: planned.count + 1)
    }

    /// The final loop step's log-probabilities, [T*V].
    static func finalLogProbabilities(_ out: LoopOutputs) -> [Float] {
        logSoftmaxRows(out.stepLogits.last ?? [], tokens: out.tokens, vocab: out.vocab)
    }

    /// Every loop step's log-probabilities, each [T*V].
    static func stepLogProbabilities(_ out: LoopOutputs) -> [[Float]] {
        out.stepLogits.map { logSoftmaxRows($0, tokens: out.tokens, vocab: out.vocab) }
    }

    /// KL(reference ‖ model) per position from log-probabilities.
    static func positionKLD(reference: [Float], model: [Float], vocab: Int, positions: Int) -> [Float] {
        (0..<positions).map { t in
            var total = 0.0
            for i in t * vocab..<(t + 1) * vocab {
                total += exp(Double(reference[i])) * (Double(reference[i]) - Double(model[i]))
            }
            return Float(total)
        }
    }
}
