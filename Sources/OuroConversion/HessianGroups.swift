import Foundation
import OuroModel

/// Input Hessians gathered a group of layers at a time, for models whose Hessians do not fit in
/// memory together (Ouro-1.4B: 24 layers x ~177 MB in f32, ffn_down's 5632² dominating, ~4.2 GB).
/// The converter asks for each tensor's H in file order; the first request in a group runs the
/// calibration tokens through the model once more, keeping only that group's inputs, and drops the
/// previous group's matrices. A model whose Hessians fit in `groupBytes` is one group: one pass,
/// the same matrices as `Hessians.collect`.
public final class HessianGroups: @unchecked Sendable {
    /// Bytes of f32 Hessians held at once. 1.5 GiB: at Ouro-1.4B shapes 9 layers a group (3 passes),
    /// leaving room under 4 GiB for the Q8_0 calibration copy (~1.4 GB) and the GPTQ factorization.
    public static let defaultGroupBytes = 3 << 29

    public let weights: OuroWeights
    public let tokens: [Int]
    /// Positions per forward (each a fresh context).
    public let window: Int
    /// Layer ranges, in order; the output head's input joins the last group (the first when the head
    /// is tied to token_embd, which is written first).
    public let groups: [Range<Int>]
    /// Called at the start of each group's pass (group, groups) and after each window (done, total).
    public var onGroupStart: ((Int, Int) -> Void)?
    public var onWindow: ((Int, Int) -> Void)?

    private var current: (index: Int, byTensor: [String: Hessians.Matrix])?

    /// `weights`: the model the calibration tokens run through (e.g. `reencoded(as: .q8_0)`).
    public init(weights: OuroWeights, tokens: [Int], window: Int = 256, groupBytes: Int = defaultGroupBytes) {
        self.weights = weights
        self.tokens = tokens
        self.window = window
        let config = weights.config
        let h = config.hiddenSize, q = config.headCount * config.headDim, i = config.intermediateSize
        let layerBytes = 4 * (h * h + q * q + h * h + i * i)
        let perGroup = max(1, groupBytes / max(layerBytes, 1))
        groups = stride(from: 0, to: max(config.layerCount, 1), by: perGroup).map { $0..<min($0 + perGroup, max(config.layerCount, 1)) }
    }

    /// Whether `tensor` gets an H (every projection and the output head, or token_embd when tied).
    public func covers(_ tensor: String) -> Bool { group(of: tensor) != nil }

    /// The H of `tensor`'s input, gathering its group first if needed; nil for tensors without one.
    public func matrix(for tensor: String) throws -> Hessians.Matrix? {
        guard let g = group(of: tensor) else { return nil }
        if current?.index != g {
            current = nil   // free the previous group before gathering the next
            current = (g, try collect(group: g))
        }
        return current?.byTensor[tensor]
    }

    /// Every H at once when the model is one group (the search measures with them), else nil.
    public func all() throws -> Hessians? {
        guard groups.count == 1 else { return nil }
        if current?.index != 0 { current = (0, try collect(group: 0)) }
        return Hessians(byTensor: current!.byTensor, tokens: tokens.count)
    }

    /// Drops whatever group is held.
    public func release() { current = nil }

    private var headGroup: Int { weights.config.tieWordEmbeddings ? 0 : groups.count - 1 }

    private func group(of tensor: String) -> Int? {
        if tensor == "output.weight" && !weights.config.tieWordEmbeddings { return headGroup }
        if tensor == "token_embd.weight" { return weights.config.tieWordEmbeddings ? headGroup : nil }
        guard tensor.hasPrefix("blk."), let layer = Int(tensor.dropFirst(4).prefix { $0 != "." }) else { return nil }
        let projections = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"]
        guard projections.contains(where: { tensor.hasSuffix(".\($0).weight") }) else { return nil }
        return groups.firstIndex { $0.contains(layer) }
    }

    private func collect(group g: Int) throws -> [String: Hessians.Matrix] {
        onGroupStart?(g, groups.count)
        let layers = groups[g], withHead = g == headGroup
        let collector = Hessians.Collector()
        collector.accepts = { input in
            if let layer = input.layer { return layers.contains(layer) }
            return withHead
        }
        let runner = OuroRunner(weights: weights)
        runner.activationObserver = collector
        var start = 0
        while start < tokens.count {
            let end = min(tokens.count, start + max(window, 1))
            try runner.observeForward(tokens: Array(tokens[start..<end]), outputHead: withHead)
            start = end
            onWindow?(start, tokens.count)
        }
        var byTensor: [String: Hessians.Matrix] = [:]
        for (key, matrix) in collector.matrices {
            matrix.symmetrize()
            for name in key.tensors(config: weights.config) { byTensor[name] = matrix }
        }
        return byTensor
    }
}
