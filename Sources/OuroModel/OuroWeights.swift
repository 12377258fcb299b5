import OuroIO
import GGUF
import Quantization
import SafeTensors

/// All weights of an Ouro model, used in place from a checkpoint folder or a GGUF file (no copies
/// except misaligned f32 data). Loading checks every expected tensor's presence, shape and type and
/// rejects tensors the configuration does not account for.
public final class OuroWeights: @unchecked Sendable {
    public let config: OuroConfiguration
    /// The type of the projection matrices when they all share one, else nil (mixed).
    public let fileType: GGMLType?
    /// Whether every stored value equals the original checkpoint's: true for a checkpoint folder,
    /// the converter's `ouro.conversion.lossless` for a GGUF file, nil when the file does not say.
    public let storesSourceExactly: Bool?
    /// The checkpoint folder or GGUF file the weights come from.
    public let source: String
    public let tokenEmbedding: WeightTensor
    /// lm_head; the token embedding itself when the embeddings are tied.
    public let output: WeightTensor
    public let outputNorm: WeightTensor
    public let exitGateWeight: WeightTensor
    public let exitGateBias: WeightTensor
    public let layers: [LayerWeights]
    /// The quantization recipe a GGUF file was written with (`ouro.quantization.recipe`: "q4_k_m",
    /// "loop"...), nil for checkpoints and files that do not say.
    public let quantizationRecipe: String?
    /// Every stored tensor by GGUF name (`output.weight` absent when tied).
    let tensorsByName: [String: WeightTensor]

    init(config: OuroConfiguration, source: String, tensors: [String: WeightTensor], storesSourceExactly: Bool?,
         quantizationRecipe: String? = nil) {
        self.config = config
        self.storesSourceExactly = storesSourceExactly
        self.quantizationRecipe = quantizationRecipe
        self.source = source
        tensorsByName = tensors
        // `tensors` holds every expected GGUF name (checked by the caller), so these lookups succeed.
        func t(_ name: String) -> WeightTensor { tensors[name]! }
        tokenEmbedding = t("token_embd.weight")
        output = config.tieWordEmbeddings ? tokenEmbedding : t("output.weight")
        outputNorm = t("output_norm.weight")
        exitGateWeight = t("exit_gate.weight")
        exitGateBias = t("exit_gate.bias")
        layers = (0..<config.layerCount).map { n in
            LayerWeights(attnNorm: t("blk.\(n).attn_norm.weight"), q: t("blk.\(n).attn_q.weight"),
                         k: t("blk.\(n).attn_k.weight"), v: t("blk.\(n).attn_v.weight"),
                         o: t("blk.\(n).attn_output.weight"), postAttentionNorm: t("blk.\(n).post_attention_norm.weight"),
                         ffnNorm: t("blk.\(n).ffn_norm.weight"), gate: t("blk.\(n).ffn_gate.weight"),
                         up: t("blk.\(n).ffn_up.weight"), down: t("blk.\(n).ffn_down.weight"),
                         postFFNNorm: t("blk.\(n).post_ffw_norm.weight"))
        }
        let projectionTypes = Set(layers.flatMap { [$0.q, $0.k, $0.v, $0.o, $0.gate, $0.up, $0.down].map(\.type) })
        fileType = projectionTypes.count == 1 ? projectionTypes.first : nil
    }

    /// GGUF keys the converter writes and loading reads back (Formats/ouro-gguf.md).
    public static let losslessKey = "ouro.conversion.lossless"
    public static let recipeKey = "ouro.quantization.recipe"

    /// The tensor stored under a GGUF name (`blk.0.attn_q.weight`), as loaded.
    public func tensor(_ ggufName: String) -> WeightTensor? {
        tensorsByName[ggufName]
    }

    /// The block count is read from the file and only bounded by u32: check it against the tensors
    /// actually stored before listing the expected ones (11 per block), so a forged count cannot make
    /// that list, and the memory behind it, arbitrarily large.
    static func checkBlockCount(_ config: OuroConfiguration, storedTensors: Int, path: String, key: String) throws {
        let perBlock = TensorNaming.layerNames.count
        guard config.layerCount <= storedTensors / perBlock else {
            throw ModelError.invalidConfig(path: path, key: key, problem:
                "is \(config.layerCount), but the weights hold only \(storedTensors) tensors (\(perBlock) per block)")
        }
    }

    /// Loads a Hugging Face checkpoint folder (config.json + safetensors, sharded or not).
    /// BF16/F16/F32 tensors are used in place: their bytes are ggml's .bf16/.f16/.f32 layouts.
    public static func load(checkpoint folder: String) throws -> OuroWeights {
        let config = try OuroConfiguration.load(folder: folder)
        let checkpoint = try SafeTensorsCheckpoint(folder: folder)
        try checkBlockCount(config, storedTensors: checkpoint.tensorNames.count,
                            path: folder.hasSuffix("/") ? folder + "config.json" : folder + "/config.json", key: "num_hidden_layers")
        let expected = TensorNaming.expectedTensors(config)
        let expectedNames = Set(expected.map(\.hfName))
        for name in checkpoint.tensorNames where !expectedNames.contains(name) {
            if TensorNaming.isIgnoredHFTensor(name) { continue }
            // Tied models: transformers re-ties lm_head to embed_tokens after loading, so a stored
            // lm_head.weight is dead weight there; ignore it the same way rather than refuse the folder.
            if config.tieWordEmbeddings && name == "lm_head.weight" { continue }
            throw ModelError.unexpectedTensor(path: checkpoint.tensor(name)?.file.path ?? folder, name: name)
        }
        var tensors: [String: WeightTensor] = [:]
        for tensor in expected {
            guard let (file, info) = checkpoint.tensor(tensor.hfName) else {
                throw ModelError.missingTensor(path: folder, name: tensor.hfName)
            }
            guard info.shape == tensor.shape else {
                throw ModelError.shapeMismatch(path: file.path, name: tensor.hfName, expected: tensor.shape, actual: info.shape)
            }
            let type: GGMLType
            switch info.dtype {
            case .f32: type = .f32
            case .f16: type = .f16
            case .bf16: type = .bf16
            default:
                throw ModelError.unsupportedType(path: file.path, name: tensor.hfName, type: info.dtype.rawValue,
                                                 allowed: "BF16, F16 or F32")
            }
            let bytes = file.data(info)
            guard bytes.count == info.elementCount * type.bytesPerBlock else {
                throw ModelError.shapeMismatch(path: file.path, name: tensor.hfName, expected: tensor.shape, actual: info.shape)
            }
            tensors[tensor.ggufName] = WeightTensor(type: type, shape: tensor.shape, bytes: bytes, owner: file)
                .alignedForFloatAccess()
        }
        return OuroWeights(config: config, source: folder, tensors: tensors, storesSourceExactly: true)
    }

    /// Loads a GGUF file written for architecture `ouro`; tensors are zero-copy views of the file's
    /// bytes, held as `residency` says: by default the mapping (instant, shared, memory the kernel can
    /// drop); `.hugePages` reads a private copy into 2 MiB pages (Linux), which decodes faster when
    /// the page cache holds the file in small folios (see `MappedFile.Residency`). The CLI picks
    /// huge pages when the file fits comfortably in available memory.
    public static func load(gguf path: String, residency: MappedFile.Residency = .mapped) throws -> OuroWeights {
        try load(ggufFile: GGUFFile(file: MappedFile(path: path, residency: residency)))
    }

    /// The same over a file already opened (tests and fuzzing open GGUF bytes in memory).
    static func load(ggufFile file: GGUFFile) throws -> OuroWeights {
        let path = file.path
        // Cheap (microseconds): refuses a file whose metadata or tensor table was altered.
        try file.checkHeaderIntegrity()
        let config = try OuroConfiguration(gguf: file)
        try checkBlockCount(config, storedTensors: file.tensors.count, path: path, key: "ouro.block_count")
        let expected = TensorNaming.expectedTensors(config)
        let expectedNames = Set(expected.map(\.ggufName))
        for info in file.tensors where !expectedNames.contains(info.name) {
            throw ModelError.unexpectedTensor(path: path, name: info.name)
        }
        var tensors: [String: WeightTensor] = [:]
        for tensor in expected {
            guard let info = file.tensor(tensor.ggufName) else {
                throw ModelError.missingTensor(path: path, name: tensor.ggufName)
            }
            let shape = Array(info.dimensions.reversed())
            guard shape == tensor.shape else {
                throw ModelError.shapeMismatch(path: path, name: tensor.ggufName, expected: tensor.shape, actual: shape)
            }
            // Norms and the exit gate are expanded to f32 once; matrices may be any type whose rows are
            // whole blocks.
            guard let rowBytes = info.type.rowByteCount(tensor.shape.last ?? 1),
                  let total = OuroConfiguration.checkedProduct([rowBytes, tensor.shape.count >= 2 ? tensor.shape[0] : 1]),
                  total == info.byteCount else {
                throw ModelError.unsupportedType(path: path, name: tensor.ggufName, type: info.type.name,
                                                 allowed: "a type whose block size divides \(tensor.shape.last ?? 1)")
            }
            let bytes = file.data(info)
            guard bytes.count == total else {
                throw ModelError.shapeMismatch(path: path, name: tensor.ggufName, expected: tensor.shape, actual: shape)
            }
            tensors[tensor.ggufName] = WeightTensor(type: info.type, shape: tensor.shape, bytes: bytes, owner: file)
                .alignedForFloatAccess()
        }
        let lossless: Bool?
        if case let .bool(value)? = file.value(Self.losslessKey) { lossless = value } else { lossless = nil }
        return OuroWeights(config: config, source: path, tensors: tensors, storesSourceExactly: lossless,
                           quantizationRecipe: file.value(Self.recipeKey)?.string)
    }
}
