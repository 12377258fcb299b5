import OuroIO
import SafeTensors
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The model dimensions a bundle is checked against (from the model's configuration).
public struct ModelDimensions: Sendable, Equatable {
    public var vocab: Int
    public var steps: Int
    public var hidden: Int
    public init(vocab: Int, steps: Int, hidden: Int) {
        self.vocab = vocab; self.steps = steps; self.hidden = hidden
    }
}

/// A reference bundle: golden outputs of the PyTorch model for a few prompts, in one safetensors file,
/// optionally zstd-compressed. The layout is documented in Formats/reference-bundle.md.
/// Opening checks every tensor's dtype and shape and every integer's range; prompt data is only
/// materialised by `load(_:)`, one prompt at a time, so large-vocabulary bundles stay cheap to hold.
public final class ReferenceBundle: ReferenceSource, @unchecked Sendable {
    public static let formatName = "ouro-reference"
    public static let formatVersion = "1"

    public let path: String
    /// `__metadata__` as stored.
    public let metadata: [String: String]
    /// True when `__metadata__` names our format; other bundles with the right tensors are read as version 1.
    public let declaresFormat: Bool
    public let prompts: [PromptLayout]
    /// Loop steps S, vocabulary V, hidden size H (nil when no prompt carries step_hidden).
    public let steps: Int
    public let vocab: Int
    public let hidden: Int?

    private let file: SafeTensorsFile

    /// Opens `path` (plain safetensors, or a zstd frame holding one) and checks it; with `model`,
    /// also checks vocab, steps and hidden against the model.
    public init(path: String, model: ModelDimensions? = nil,
                decompressedLimit: UInt64 = ZstdDecoder.defaultLimit) throws {
        let mapped = try MappedFile(path: path)
        if ZstdDecoder.hasZstdMagic(mapped.bytes) {
            // Decompressed into an unlinked temporary file and mapped, not into memory: with the
            // per-prompt page release in load(_:), memory stays at one prompt whatever the size.
            let temporary = try ZstdDecoder.decompressToTemporaryFile(mapped.bytes, path: path, limit: decompressedLimit)
            defer { unlink(temporary) }
            file = try SafeTensorsFile(path: path, mapped: try MappedFile(path: temporary))
        } else {
            file = try SafeTensorsFile(path: path)
        }
        self.path = path
        metadata = file.metadata
        if metadata["format"] == Self.formatName {
            let version = metadata["format_version"] ?? "(absent)"
            guard version == Self.formatVersion else {
                throw ValidationFailure.unsupportedFormatVersion(path: path, version: version)
            }
            declaresFormat = true
        } else {
            declaresFormat = false
        }
        let checker = BundleChecker(file: file, model: model)
        prompts = try checker.layouts()
        steps = checker.steps ?? 0
        vocab = checker.vocab ?? 0
        hidden = checker.hidden
    }

    /// Checks the bundle's axes against a model's configuration.
    public func check(against model: ModelDimensions) throws {
        // Token ids were checked against the bundle's own V, which then equals the model's.
        try checkDimensions(against: model)
    }

    /// Reads one prompt's tensors as floats / ints.
    public func load(_ layout: PromptLayout) throws -> ReferencePrompt {
        let p = layout.prefix
        func ints(_ name: String) throws -> [Int] { try file.int64s(p + name).map { Int($0) } }
        func floats(_ name: String) throws -> [Float] { try file.floats(p + name) }
        // Plain bundles are mapped: drop this prompt's pages once copied, so resident memory
        // follows one prompt rather than growing to the whole file as validation reads on.
        defer { for info in file.tensors where info.name.hasPrefix(p) { file.release(info) } }
        return ReferencePrompt(
            layout: layout,
            inputIDs: try ints("input_ids"),
            stepLogits: try floats("step_logits"),
            stepHidden: layout.hasStepHidden ? try floats("step_hidden") : nil,
            gateLogits: try floats("gate_logits"),
            exitPDF: try floats("exit_pdf"),
            finalLogits: try floats("final_logits"),
            weightedLogits: layout.hasWeighted ? try floats("weighted_logits") : nil,
            thresholds: try layout.thresholds.map {
                ThresholdReference(key: $0.key, value: $0.value,
                                   logits: try floats("threshold_\($0.key).logits"),
                                   exitSteps: try ints("threshold_\($0.key).exit_steps"))
            },
            exitAtStep: try layout.exitAtSteps.map {
                StepReference(step: $0, logits: try floats("exit_at_step_\($0).logits"))
            },
            greedyCached: layout.greedyCachedCount != nil ? try ints("greedy_cached") : nil,
            greedyUncached: layout.greedyUncachedCount != nil ? try ints("greedy_uncached") : nil,
            labels: layout.hasLabels ? try ints("labels") : nil)
    }
}

/// What one prompt holds, known after opening (no tensor data read).
public struct PromptLayout: Sendable, Equatable {
    /// N in `pN.`
    public let index: Int
    public var prefix: String { "p\(index)." }
    /// Prompt length T.
    public let tokens: Int
    /// Thresholds present, ascending, with the text used in the tensor name ("0.5").
    public let thresholds: [ThresholdKey]
    /// 0-based steps k of `exit_at_step_<k>.logits`, ascending.
    public let exitAtSteps: [Int]
    public let hasStepHidden: Bool
    public let hasWeighted: Bool
    public let hasLabels: Bool
    public let greedyCachedCount: Int?
    public let greedyUncachedCount: Int?
}

public struct ThresholdKey: Sendable, Equatable {
    public let key: String
    public let value: Float
}

/// One prompt's reference tensors, flattened row-major in the bundle's axis order.
public struct ReferencePrompt: Sendable {
    public let layout: PromptLayout
    public let inputIDs: [Int]
    public let stepLogits: [Float]       // [S,T,V]
    public let stepHidden: [Float]?      // [S,T,H]
    public let gateLogits: [Float]       // [S,T]
    public let exitPDF: [Float]          // [T,S]
    public let finalLogits: [Float]      // [T,V]
    public let weightedLogits: [Float]?  // [T,V]
    public let thresholds: [ThresholdReference]
    public let exitAtStep: [StepReference]
    public let greedyCached: [Int]?
    public let greedyUncached: [Int]?
    public let labels: [Int]?            // [T], next-token ids; negative = not scored

    public init(layout: PromptLayout, inputIDs: [Int], stepLogits: [Float], stepHidden: [Float]?, gateLogits: [Float],
                exitPDF: [Float], finalLogits: [Float], weightedLogits: [Float]?, thresholds: [ThresholdReference],
                exitAtStep: [StepReference], greedyCached: [Int]?, greedyUncached: [Int]?, labels: [Int]?) {
        self.layout = layout; self.inputIDs = inputIDs; self.stepLogits = stepLogits; self.stepHidden = stepHidden
        self.gateLogits = gateLogits; self.exitPDF = exitPDF; self.finalLogits = finalLogits
        self.weightedLogits = weightedLogits; self.thresholds = thresholds; self.exitAtStep = exitAtStep
        self.greedyCached = greedyCached; self.greedyUncached = greedyUncached; self.labels = labels
    }
}

public struct ThresholdReference: Sendable {
    public let key: String
    public let value: Float
    public let logits: [Float]           // [T,V]
    public let exitSteps: [Int]          // [T], 0-based
}

public struct StepReference: Sendable {
    public let step: Int                 // 0-based
    public let logits: [Float]           // [T,V]
}
