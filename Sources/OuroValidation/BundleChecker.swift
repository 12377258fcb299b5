import SafeTensors

/// Groups a bundle's tensors by prompt and checks dtypes, shapes and integer ranges, cheapest first:
/// names, then shapes against each other, then against the model, then integer values.
final class BundleChecker {
    private let file: SafeTensorsFile
    private let model: ModelDimensions?
    private(set) var steps: Int?
    private(set) var vocab: Int?
    private(set) var hidden: Int?

    private static let floatTypes: Set<SafeTensorsDType> = [.f32, .f16, .bf16]
    private static let intTypes: Set<SafeTensorsDType> = [.i64, .i32]

    init(file: SafeTensorsFile, model: ModelDimensions?) {
        self.file = file
        self.model = model
    }

    private var path: String { file.path }

    func layouts() throws -> [PromptLayout] {
        var names: [Int: [String]] = [:]      // prompt index -> suffixes after "pN."
        for info in file.tensors {
            guard let (index, suffix) = Self.splitPrompt(info.name) else { continue }
            names[index, default: []].append(suffix)
        }
        let indices = names.keys.filter { names[$0]!.contains("input_ids") }.sorted()
        guard !indices.isEmpty else { throw ValidationFailure.noPrompts(path: path) }
        var result: [PromptLayout] = []
        for index in indices {
            result.append(try layout(index: index, suffixes: names[index]!))
        }
        return result
    }

    /// "p12.step_logits" -> (12, "step_logits")
    static func splitPrompt(_ name: String) -> (Int, String)? {
        guard name.first == "p", let dot = name.firstIndex(of: ".") else { return nil }
        let digits = name[name.index(after: name.startIndex)..<dot]
        guard !digits.isEmpty, digits.count <= 9, digits.allSatisfy({ $0.isASCII && $0.isNumber }),
              let index = Int(digits) else { return nil }
        return (index, String(name[name.index(after: dot)...]))
    }

    private func layout(index: Int, suffixes: [String]) throws -> PromptLayout {
        let p = "p\(index)."
        let ids = try require(p + "input_ids", ints: true)
        guard ids.shape.count == 1, ids.shape[0] >= 1 else {
            throw shape(ids, "[T] with T >= 1")
        }
        let t = ids.shape[0]

        let logits = try require(p + "step_logits", ints: false)
        guard logits.shape.count == 3, logits.shape[1] == t, logits.shape[0] >= 1, logits.shape[2] >= 1 else {
            throw shape(logits, "[S, T=\(t), V]")
        }
        try agree(&steps, logits.shape[0], logits, "S")
        try agree(&vocab, logits.shape[2], logits, "V")
        let s = logits.shape[0], v = logits.shape[2]
        if let model {
            if s != model.steps { throw shape(logits, "[S=\(model.steps) (model loop steps), T=\(t), V]") }
            if v != model.vocab { throw shape(logits, "[S, T, V=\(model.vocab) (model vocab_size)]") }
        }

        try expect(p + "gate_logits", [s, t], "[S=\(s), T=\(t)]")
        try expect(p + "exit_pdf", [t, s], "[T=\(t), S=\(s)]")
        try expect(p + "final_logits", [t, v], "[T=\(t), V=\(v)]")

        var hasHidden = false
        if let h = try optional(p + "step_hidden", ints: false) {
            guard h.shape.count == 3, h.shape[0] == s, h.shape[1] == t, h.shape[2] >= 1 else {
                throw shape(h, "[S=\(s), T=\(t), H]")
            }
            try agree(&hidden, h.shape[2], h, "H")
            if let model, h.shape[2] != model.hidden {
                throw shape(h, "[S, T, H=\(model.hidden) (model hidden_size)]")
            }
            hasHidden = true
        }
        let hasWeighted = try optional(p + "weighted_logits", ints: false) != nil
        if hasWeighted { try expect(p + "weighted_logits", [t, v], "[T=\(t), V=\(v)]") }

        var thresholds: [ThresholdKey] = []
        var exitSteps: [Int] = []
        for suffix in suffixes {
            if suffix.hasPrefix("threshold_"), suffix.hasSuffix(".logits") {
                let key = String(suffix.dropFirst("threshold_".count).dropLast(".logits".count))
                guard let value = Float(key), value.isFinite else {
                    throw ValidationFailure.malformedTensorName(path: path, name: p + suffix)
                }
                try expect(p + suffix, [t, v], "[T=\(t), V=\(v)]")
                let stepsName = p + "threshold_\(key).exit_steps"
                _ = try require(stepsName, ints: true)
                try expect(stepsName, [t], "[T=\(t)]")
                try checkRange(stepsName, 0..<s)
                thresholds.append(ThresholdKey(key: key, value: value))
            } else if suffix.hasPrefix("exit_at_step_"), suffix.hasSuffix(".logits") {
                let text = suffix.dropFirst("exit_at_step_".count).dropLast(".logits".count)
                guard text.count <= 9, let k = Int(text), k >= 0 else {
                    throw ValidationFailure.malformedTensorName(path: path, name: p + suffix)
                }
                guard k < s else {
                    throw ValidationFailure.valueOutOfRange(path: path, name: p + suffix, value: Int64(k), range: "loop steps 0..<\(s)")
                }
                try expect(p + suffix, [t, v], "[T=\(t), V=\(v)]")
                exitSteps.append(k)
            }
        }
        if let orphan = suffixes.first(where: { $0.hasPrefix("threshold_") && $0.hasSuffix(".exit_steps") }),
           !suffixes.contains(String(orphan.dropLast(".exit_steps".count)) + ".logits") {
            throw ValidationFailure.missingTensor(path: path, name: p + String(orphan.dropLast(".exit_steps".count)) + ".logits")
        }

        try checkRange(p + "input_ids", 0..<v)
        var hasLabels = false
        if try optional(p + "labels", ints: true) != nil {
            try expect(p + "labels", [t], "[T=\(t)]")
            // Negative labels (the -100 ignore index of Hugging Face) are skipped in perplexity.
            try checkRange(p + "labels", -1_000_000..<v)
            hasLabels = true
        }
        let cached = try greedyCount(p + "greedy_cached", vocab: v)
        let uncached = try greedyCount(p + "greedy_uncached", vocab: v)

        return PromptLayout(index: index, tokens: t,
                            thresholds: thresholds.sorted { $0.value < $1.value },
                            exitAtSteps: exitSteps.sorted(),
                            hasStepHidden: hasHidden, hasWeighted: hasWeighted, hasLabels: hasLabels,
                            greedyCachedCount: cached, greedyUncachedCount: uncached)
    }

    // MARK: - helpers

    private func greedyCount(_ name: String, vocab v: Int) throws -> Int? {
        guard let info = try optional(name, ints: true) else { return nil }
        guard info.shape.count == 1 else { throw shape(info, "[N] new token ids") }
        try checkRange(name, 0..<v)
        return info.shape[0]
    }

    private func require(_ name: String, ints: Bool) throws -> SafeTensorInfo {
        guard let info = try optional(name, ints: ints) else {
            throw ValidationFailure.missingTensor(path: path, name: name)
        }
        return info
    }

    private func optional(_ name: String, ints: Bool) throws -> SafeTensorInfo? {
        guard let info = file.info(name) else { return nil }
        let allowed = ints ? Self.intTypes : Self.floatTypes
        guard allowed.contains(info.dtype) else {
            throw ValidationFailure.wrongDType(path: path, name: name, dtype: info.dtype.rawValue,
                                               expected: ints ? "I64 or I32" : "F32 (F16/BF16 accepted)")
        }
        return info
    }

    private func expect(_ name: String, _ dims: [Int], _ text: String) throws {
        let info = try require(name, ints: name.hasSuffix("exit_steps") || name.hasSuffix("labels"))
        guard info.shape == dims else { throw shape(info, text) }
    }

    private func agree(_ slot: inout Int?, _ value: Int, _ info: SafeTensorInfo, _ axis: String) throws {
        if let known = slot, known != value {
            throw shape(info, "\(axis) = \(known) as in the first prompt")
        }
        slot = value
    }

    private func checkRange(_ name: String, _ range: Range<Int>) throws {
        for value in try file.int64s(name) where value < Int64(range.lowerBound) || value >= Int64(range.upperBound) {
            throw ValidationFailure.valueOutOfRange(path: path, name: name, value: value,
                                                    range: "\(range.lowerBound)..<\(range.upperBound)")
        }
    }

    private func shape(_ info: SafeTensorInfo, _ expected: String) -> ValidationFailure {
        .shapeMismatch(path: path, name: info.name, shape: info.shape, expected: expected)
    }
}
