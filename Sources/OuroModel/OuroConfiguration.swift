import Foundation

/// The hyper-parameters of an Ouro looped model, read from a Hugging Face `config.json`
/// (keys mapped through `CodingKeys`) or from GGUF metadata (see `OuroConfiguration+GGUF.swift`).
///
/// Decoding validates everything the forward pass relies on, so a decoded configuration is safe to
/// size buffers from: every size is in 1...UInt32.max and the products the tensor shapes need fit in Int.
public struct OuroConfiguration: Codable, Sendable, Equatable {
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var kvHeadCount: Int
    public var headDim: Int
    public var vocabSize: Int
    public var maxPositions: Int
    public var ropeTheta: Double
    public var rmsNormEps: Double
    /// `total_ut_steps`: how many times the shared stack of layers runs.
    public var loopCount: Int
    /// nil when the config has no threshold (then the default forward returns the last step).
    public var earlyExitThreshold: Double?
    public var tieWordEmbeddings: Bool
    public var bosTokenID: Int?
    public var eosTokenID: Int?
    public var padTokenID: Int?

    public enum CodingKeys: String, CodingKey, CaseIterable, Sendable {
        case hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size"
        case layerCount = "num_hidden_layers"
        case headCount = "num_attention_heads"
        case kvHeadCount = "num_key_value_heads"
        case headDim = "head_dim"
        case vocabSize = "vocab_size"
        case maxPositions = "max_position_embeddings"
        case ropeTheta = "rope_theta"
        case rmsNormEps = "rms_norm_eps"
        case loopCount = "total_ut_steps"
        case earlyExitThreshold = "early_exit_threshold"
        case tieWordEmbeddings = "tie_word_embeddings"
        case bosTokenID = "bos_token_id"
        case eosTokenID = "eos_token_id"
        case padTokenID = "pad_token_id"
        // Read only to refuse what the forward pass does not implement.
        case modelType = "model_type"
        case hiddenAct = "hidden_act"
        case ropeScaling = "rope_scaling"
        case useSlidingWindow = "use_sliding_window"
        case layerTypes = "layer_types"
    }

    /// Memberwise; does not validate (call `validationProblem()` if the values are untrusted).
    public init(hiddenSize: Int, intermediateSize: Int, layerCount: Int, headCount: Int, kvHeadCount: Int,
                headDim: Int, vocabSize: Int, maxPositions: Int, ropeTheta: Double = 10000,
                rmsNormEps: Double = 1e-6, loopCount: Int = 4, earlyExitThreshold: Double? = nil,
                tieWordEmbeddings: Bool = false, bosTokenID: Int? = nil, eosTokenID: Int? = nil,
                padTokenID: Int? = nil) {
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.layerCount = layerCount
        self.headCount = headCount
        self.kvHeadCount = kvHeadCount
        self.headDim = headDim
        self.vocabSize = vocabSize
        self.maxPositions = maxPositions
        self.ropeTheta = ropeTheta
        self.rmsNormEps = rmsNormEps
        self.loopCount = loopCount
        self.earlyExitThreshold = earlyExitThreshold
        self.tieWordEmbeddings = tieWordEmbeddings
        self.bosTokenID = bosTokenID
        self.eosTokenID = eosTokenID
        self.padTokenID = padTokenID
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let modelType = try c.decode(String.self, forKey: .modelType)
        guard modelType == "ouro" else {
            throw DecodingError.dataCorruptedError(forKey: .modelType, in: c,
                debugDescription: "is \"\(modelType)\"; expected \"ouro\"")
        }
        if let act = try c.decodeIfPresent(String.self, forKey: .hiddenAct), act != "silu" {
            throw DecodingError.dataCorruptedError(forKey: .hiddenAct, in: c,
                debugDescription: "is \"\(act)\"; only \"silu\" is supported")
        }
        if c.contains(.ropeScaling), try !c.decodeNil(forKey: .ropeScaling) {
            throw DecodingError.dataCorruptedError(forKey: .ropeScaling, in: c,
                debugDescription: "is set; RoPE scaling is not supported (only null)")
        }
        if try c.decodeIfPresent(Bool.self, forKey: .useSlidingWindow) == true {
            throw DecodingError.dataCorruptedError(forKey: .useSlidingWindow, in: c,
                debugDescription: "is true; sliding-window attention is not supported")
        }
        if let types = try c.decodeIfPresent([String].self, forKey: .layerTypes),
           let other = types.first(where: { $0 != "full_attention" }) {
            throw DecodingError.dataCorruptedError(forKey: .layerTypes, in: c,
                debugDescription: "contains \"\(other)\"; only \"full_attention\" is supported")
        }

        hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
        intermediateSize = try c.decode(Int.self, forKey: .intermediateSize)
        layerCount = try c.decode(Int.self, forKey: .layerCount)
        headCount = try c.decode(Int.self, forKey: .headCount)
        // As in the Llama/Qwen2 configs upstream derives from: absent or null means plain multi-head.
        kvHeadCount = try c.decodeIfPresent(Int.self, forKey: .kvHeadCount) ?? headCount
        vocabSize = try c.decode(Int.self, forKey: .vocabSize)
        maxPositions = try c.decode(Int.self, forKey: .maxPositions)
        if let dim = try c.decodeIfPresent(Int.self, forKey: .headDim) {
            headDim = dim
        } else {
            guard headCount > 0 else {
                throw DecodingError.dataCorruptedError(forKey: .headCount, in: c, debugDescription: "must be > 0")
            }
            headDim = hiddenSize / headCount
        }
        ropeTheta = try c.decodeIfPresent(Double.self, forKey: .ropeTheta) ?? 10000
        rmsNormEps = try c.decodeIfPresent(Double.self, forKey: .rmsNormEps) ?? 1e-6
        loopCount = try c.decodeIfPresent(Int.self, forKey: .loopCount) ?? 4
        earlyExitThreshold = try c.decodeIfPresent(Double.self, forKey: .earlyExitThreshold)
        tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? false
        bosTokenID = try c.decodeIfPresent(Int.self, forKey: .bosTokenID)
        eosTokenID = try c.decodeIfPresent(Int.self, forKey: .eosTokenID)
        padTokenID = try c.decodeIfPresent(Int.self, forKey: .padTokenID)

        if let (key, problem) = validationProblem() {
            throw DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: problem)
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode("ouro", forKey: .modelType)
        try c.encode("silu", forKey: .hiddenAct)
        try c.encode(hiddenSize, forKey: .hiddenSize)
        try c.encode(intermediateSize, forKey: .intermediateSize)
        try c.encode(layerCount, forKey: .layerCount)
        try c.encode(headCount, forKey: .headCount)
        try c.encode(kvHeadCount, forKey: .kvHeadCount)
        try c.encode(headDim, forKey: .headDim)
        try c.encode(vocabSize, forKey: .vocabSize)
        try c.encode(maxPositions, forKey: .maxPositions)
        try c.encode(ropeTheta, forKey: .ropeTheta)
        try c.encode(rmsNormEps, forKey: .rmsNormEps)
        try c.encode(loopCount, forKey: .loopCount)
        try c.encodeIfPresent(earlyExitThreshold, forKey: .earlyExitThreshold)
        try c.encode(tieWordEmbeddings, forKey: .tieWordEmbeddings)
        try c.encodeIfPresent(bosTokenID, forKey: .bosTokenID)
        try c.encodeIfPresent(eosTokenID, forKey: .eosTokenID)
        try c.encodeIfPresent(padTokenID, forKey: .padTokenID)
    }

    /// The first value the forward pass cannot work with, as (key, problem), or nil.
    public func validationProblem() -> (key: CodingKeys, problem: String)? {
        let sizes: [(CodingKeys, Int)] = [
            (.hiddenSize, hiddenSize), (.intermediateSize, intermediateSize), (.layerCount, layerCount),
            (.headCount, headCount), (.kvHeadCount, kvHeadCount), (.headDim, headDim),
            (.vocabSize, vocabSize), (.maxPositions, maxPositions), (.loopCount, loopCount),
        ]
        for (key, value) in sizes {
            // GGUF stores these as u32.
            guard value > 0, value <= Int(UInt32.max) else {
                return (key, "is \(value); must be in 1...\(UInt32.max)")
            }
        }
        guard headCount % kvHeadCount == 0 else {
            return (.kvHeadCount, "is \(kvHeadCount); must divide num_attention_heads (\(headCount))")
        }
        guard headDim % 2 == 0 else {
            return (.headDim, "is \(headDim); rotate-half RoPE needs an even head dimension")
        }
        guard ropeTheta.isFinite, ropeTheta > 0, Float(ropeTheta).isFinite else {
            return (.ropeTheta, "is \(ropeTheta); must be a finite number > 0")
        }
        guard rmsNormEps.isFinite, rmsNormEps > 0, Float(rmsNormEps) > 0 else {
            return (.rmsNormEps, "is \(rmsNormEps); must be a finite number > 0 (and > 0 as float32)")
        }
        if let t = earlyExitThreshold, !t.isFinite {
            return (.earlyExitThreshold, "is \(t); must be a finite number or null")
        }
        for (key, id) in [(CodingKeys.bosTokenID, bosTokenID), (.eosTokenID, eosTokenID), (.padTokenID, padTokenID)] {
            if let id, id < 0 || id > Int(UInt32.max) { return (key, "is \(id); must be >= 0 or null") }
        }
        // Every tensor's byte count as f32 must be representable (the largest come from these products).
        let products: [(CodingKeys, [Int])] = [
            (.vocabSize, [vocabSize, hiddenSize, 4]), (.intermediateSize, [intermediateSize, hiddenSize, 4]),
            (.headCount, [headCount, headDim, hiddenSize, 4]), (.maxPositions, [maxPositions, headCount, headDim, 4]),
        ]
        for (key, factors) in products where Self.checkedProduct(factors) == nil {
            return (key, "makes a tensor too large (\(factors.dropLast().map(String.init).joined(separator: " x ")) elements)")
        }
        return nil
    }

    static func checkedProduct(_ factors: [Int]) -> Int? {
        var product = 1
        for f in factors {
            let (p, overflow) = product.multipliedReportingOverflow(by: f)
            if overflow { return nil }
            product = p
        }
        return product
    }

    /// Reads and validates `<folder>/config.json`. Errors name the file and the key.
    public static func load(folder: String) throws -> OuroConfiguration {
        let path = folder.hasSuffix("/") ? folder + "config.json" : folder + "/config.json"
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            let reason = FileManager.default.fileExists(atPath: path) ? "not readable" : "no such file"
            throw ModelError.unreadableConfig(path: path, reason: reason)
        }
        do {
            return try JSONDecoder().decode(OuroConfiguration.self, from: data)
        } catch let error as DecodingError {
            throw Self.modelError(error, path: path)
        }
    }

    static func modelError(_ error: DecodingError, path: String) -> ModelError {
        func key(_ context: DecodingError.Context) -> String {
            context.codingPath.map(\.stringValue).joined(separator: ".")
        }
        switch error {
        case let .keyNotFound(missing, context):
            let prefix = key(context)
            return .invalidConfig(path: path, key: prefix.isEmpty ? missing.stringValue : "\(prefix).\(missing.stringValue)",
                                  problem: "is missing")
        case let .typeMismatch(type, context):
            return .invalidConfig(path: path, key: key(context), problem: "has the wrong type; expected \(Self.typeName(type))")
        case let .valueNotFound(type, context):
            return .invalidConfig(path: path, key: key(context), problem: "is null; expected \(Self.typeName(type))")
        case let .dataCorrupted(context):
            if context.codingPath.isEmpty {
                return .unreadableConfig(path: path, reason: "not valid JSON")
            }
            return .invalidConfig(path: path, key: key(context), problem: context.debugDescription)
        @unknown default:
            return .unreadableConfig(path: path, reason: "\(error)")
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type: return "an integer"
        case is Double.Type: return "a number"
        case is Bool.Type: return "true or false"
        case is String.Type: return "a string"
        default: return "\(type)"
        }
    }
}
