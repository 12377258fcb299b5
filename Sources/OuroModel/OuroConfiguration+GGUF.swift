import GGUF

/// The configuration as GGUF metadata (`ouro.*` keys, ints as u32, floats as f32) and back.
/// rope_theta and rms_norm_eps lose precision as f32; the forward pass uses them as Float either way.
extension OuroConfiguration {
    static let ggufKeys: [CodingKeys: String] = [
        .hiddenSize: "ouro.embedding_length", .intermediateSize: "ouro.feed_forward_length",
        .layerCount: "ouro.block_count", .headCount: "ouro.attention.head_count",
        .kvHeadCount: "ouro.attention.head_count_kv", .headDim: "ouro.attention.key_length",
        .vocabSize: "ouro.vocab_size", .maxPositions: "ouro.context_length",
        .ropeTheta: "ouro.rope.freq_base", .rmsNormEps: "ouro.attention.layer_norm_rms_epsilon",
        .loopCount: "ouro.loop_count", .earlyExitThreshold: "ouro.exit_threshold",
        .tieWordEmbeddings: "ouro.tie_word_embeddings", .bosTokenID: "tokenizer.ggml.bos_token_id",
        .eosTokenID: "tokenizer.ggml.eos_token_id", .padTokenID: "tokenizer.ggml.padding_token_id",
    ]
    static let valueLengthKey = "ouro.attention.value_length"

    /// Every field in `ggufKeys` has a key; the writer and the reader both name keys through this.
    static func ggufKey(_ field: CodingKeys) -> String { ggufKeys[field]! }

    public func ggufMetadata() -> [(String, GGUFValue)] {
        func u32(_ value: Int) -> GGUFValue { .uint32(UInt32(clamping: value)) }
        let key = Self.ggufKey
        var result: [(String, GGUFValue)] = [
            ("general.architecture", .string("ouro")),
            (key(.maxPositions), u32(maxPositions)),
            (key(.hiddenSize), u32(hiddenSize)),
            (key(.intermediateSize), u32(intermediateSize)),
            (key(.layerCount), u32(layerCount)),
            (key(.loopCount), u32(loopCount)),
        ]
        if let earlyExitThreshold { result.append((key(.earlyExitThreshold), .float32(Float(earlyExitThreshold)))) }
        result += [
            (key(.headCount), u32(headCount)),
            (key(.kvHeadCount), u32(kvHeadCount)),
            (key(.headDim), u32(headDim)),
            (Self.valueLengthKey, u32(headDim)),
            (key(.rmsNormEps), .float32(Float(rmsNormEps))),
            (key(.ropeTheta), .float32(Float(ropeTheta))),
            (key(.vocabSize), u32(vocabSize)),
        ]
        if let bosTokenID { result.append((key(.bosTokenID), u32(bosTokenID))) }
        if let eosTokenID { result.append((key(.eosTokenID), u32(eosTokenID))) }
        if let padTokenID { result.append((key(.padTokenID), u32(padTokenID))) }
        result.append((key(.tieWordEmbeddings), .bool(tieWordEmbeddings)))
        return result
    }

    /// Reads the metadata written by `ggufMetadata()`; a missing or malformed key is an error naming
    /// the key and the file.
    public init(gguf file: GGUFFile) throws {
        let path = file.path
        func value(_ key: String) throws -> GGUFValue {
            guard let v = file.value(key) else { throw ModelError.invalidConfig(path: path, key: key, problem: "is missing") }
            return v
        }
        func int(_ field: CodingKeys) throws -> Int {
            let key = Self.ggufKey(field)
            guard let n = try value(key).int else { throw ModelError.invalidConfig(path: path, key: key, problem: "is not an integer") }
            return n
        }
        func optionalInt(_ field: CodingKeys) throws -> Int? {
            file.value(Self.ggufKey(field)) == nil ? nil : try int(field)
        }
        func number(_ key: String) throws -> Double {
            guard let x = try value(key).double else { throw ModelError.invalidConfig(path: path, key: key, problem: "is not a number") }
            return x
        }
        guard case .string("ouro")? = file.value("general.architecture") else {
            let found = file.value("general.architecture")?.string.map { "is \"\($0)\"" } ?? "is missing or not a string"
            throw ModelError.invalidConfig(path: path, key: "general.architecture", problem: "\(found); expected \"ouro\"")
        }
        let thresholdKey = Self.ggufKey(.earlyExitThreshold), tiedKey = Self.ggufKey(.tieWordEmbeddings)
        let threshold: Double? = file.value(thresholdKey) == nil ? nil : try number(thresholdKey)
        let tied: Bool
        switch try value(tiedKey) {
        case let .bool(b): tied = b
        default: throw ModelError.invalidConfig(path: path, key: tiedKey, problem: "is not a bool")
        }
        self.init(hiddenSize: try int(.hiddenSize), intermediateSize: try int(.intermediateSize),
                  layerCount: try int(.layerCount), headCount: try int(.headCount), kvHeadCount: try int(.kvHeadCount),
                  headDim: try int(.headDim), vocabSize: try int(.vocabSize), maxPositions: try int(.maxPositions),
                  ropeTheta: try number(Self.ggufKey(.ropeTheta)), rmsNormEps: try number(Self.ggufKey(.rmsNormEps)),
                  loopCount: try int(.loopCount), earlyExitThreshold: threshold, tieWordEmbeddings: tied,
                  bosTokenID: try optionalInt(.bosTokenID), eosTokenID: try optionalInt(.eosTokenID),
                  padTokenID: try optionalInt(.padTokenID))
        guard try value(Self.valueLengthKey).int == headDim else {
            throw ModelError.invalidConfig(path: path, key: Self.valueLengthKey,
                                           problem: "must equal \(Self.ggufKey(.headDim)) (\(headDim))")
        }
        if let (field, problem) = validationProblem() {
            throw ModelError.invalidConfig(path: path, key: Self.ggufKeys[field] ?? field.stringValue, problem: problem)
        }
    }
}
