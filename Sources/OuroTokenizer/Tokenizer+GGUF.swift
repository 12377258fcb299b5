import GGUF
import OuroIO

/// The tokenizer as llama.cpp stores it in GGUF (`convert_hf_to_gguf.py`'s byte-level BPE path):
/// `tokenizer.ggml.model` "gpt2", the pre-tokenizer by llama.cpp's name (`tokenizer.ggml.pre`), every
/// token with its type, the merges, the chat template.
extension Tokenizer {
    /// llama.cpp's token types (`llama_token_type`).
    public enum GGUFTokenType: Int32 {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    public static let modelKey = "tokenizer.ggml.model"
    public static let preKey = "tokenizer.ggml.pre"
    public static let tokensKey = "tokenizer.ggml.tokens"
    public static let tokenTypeKey = "tokenizer.ggml.token_type"
    public static let mergesKey = "tokenizer.ggml.merges"
    public static let addBOSKey = "tokenizer.ggml.add_bos_token"
    public static let bosIDKey = "tokenizer.ggml.bos_token_id"
    public static let eosIDKey = "tokenizer.ggml.eos_token_id"
    public static let eotIDKey = "tokenizer.ggml.eot_token_id"
    public static let chatTemplateKey = "tokenizer.chat_template"

    /// llama.cpp's pre-tokenizer names for the pipelines it shares with Hugging Face files.
    static let llamaPreTokenizers: [(name: String, steps: [PreTokenizerStep], ignoreMerges: Bool)] = [
        ("smollm", [.digits(individual: true), .byteLevel(addPrefixSpace: false, useRegex: true)], false),
        ("gpt2", [.byteLevel(addPrefixSpace: false, useRegex: true)], false),
        ("llama-bpe", [.split(.scanner(.llama3(maxDigits: 3)), .isolated, invert: false),
                       .byteLevel(addPrefixSpace: false, useRegex: false)], true),
        ("qwen2", [.split(.scanner(.llama3(maxDigits: 1)), .isolated, invert: false),
                   .byteLevel(addPrefixSpace: false, useRegex: false)], false),
    ]

    /// Reads the tokenizer from a GGUF file's `tokenizer.ggml.*` keys (no side files needed).
    public convenience init(gguf file: GGUFFile) throws {
        let path = file.path
        func fail(_ key: String, _ problem: String) -> TokenizerError { .badFile(path: path, reason: "\(key) \(problem)") }
        func strings(_ key: String) throws -> [String] {
            guard let value = file.value(key) else { throw fail(key, "is missing") }
            guard case let .array(.string, items) = value else { throw fail(key, "is not an array of strings") }
            return items.map { $0.string ?? "" }
        }
        guard let model = file.value(Self.modelKey) else { throw fail(Self.modelKey, "is missing (the file has no tokenizer)") }
        guard model.string == "gpt2" else { throw TokenizerError.unsupported(path: path, construct: "\(Self.modelKey) \(quotedForMessage(model.string ?? "?")) (only gpt2, byte-level BPE, is implemented)") }
        guard let pre = file.value(Self.preKey)?.string else { throw fail(Self.preKey, "is missing or not a string") }
        guard let preTokenizer = Self.llamaPreTokenizers.first(where: { $0.name == pre }) else {
            throw TokenizerError.unsupported(path: path, construct: "\(Self.preKey) \(quotedForMessage(pre))")
        }
        let tokens = try strings(Self.tokensKey)
        guard tokens.count < TokenizerFileReader.idLimit else { throw fail(Self.tokensKey, "has too many tokens (\(tokens.count))") }
        var types = [Int](repeating: GGUFTokenType.normal.rawValue.int, count: tokens.count)
        if let value = file.value(Self.tokenTypeKey) {
            guard case let .array(_, items) = value, items.count == tokens.count else {
                throw fail(Self.tokenTypeKey, "is not an array of \(tokens.count) integers")
            }
            for (i, item) in items.enumerated() {
                guard let type = item.int else { throw fail(Self.tokenTypeKey, "is not an array of integers") }
                types[i] = type
            }
        }
        var definition = TokenizerDefinition(vocabulary: [], merges: [], ignoreMerges: preTokenizer.ignoreMerges)
        definition.preTokenizers = preTokenizer.steps
        for (id, token) in tokens.enumerated() {
            switch GGUFTokenType(rawValue: Int32(clamping: types[id])) as GGUFTokenType? {
            case .normal?, .unknown?:
                definition.vocabulary.append((token, id))
            case .control?, .userDefined?:
                definition.vocabulary.append((token, id))
                definition.addedTokens.append(AddedToken(id: id, content: token, special: types[id] == 3))
            case .unused?:
                continue
            case .byte?, nil:
                throw TokenizerError.unsupported(path: path, construct: "\(Self.tokenTypeKey)[\(id)] = \(types[id])")
            }
        }
        for (index, merge) in try strings(Self.mergesKey).enumerated() {
            let parts = merge.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw fail("\(Self.mergesKey)[\(index)]", "is \(quotedForMessage(merge)), not two tokens separated by one space")
            }
            definition.merges.append((String(parts[0]), String(parts[1])))
        }
        definition.chatTemplate = file.value(Self.chatTemplateKey)?.string
        definition.addBOS = file.value(Self.addBOSKey)?.bool ?? false
        func id(_ key: String) -> Int? {
            guard let id = file.value(key)?.int, id >= 0, id < tokens.count else { return nil }
            return id
        }
        definition.bosTokenID = id(Self.bosIDKey)
        definition.eosTokenID = id(Self.eosIDKey)
        definition.bosToken = definition.bosTokenID.map { tokens[$0] }
        definition.eosToken = definition.eosTokenID.map { tokens[$0] }
        if let eot = id(Self.eotIDKey) { definition.extraStopIDs.append(eot) }
        try self.init(definition, source: path)
    }

    /// The keys `ouro convert` writes, for an embedding of `rows` rows (tokens past the tokenizer's are
    /// `[PADn]`, unused, as llama.cpp pads them). The bos/eos/padding ids are written from config.json
    /// by the model's metadata; `eosID` is that eos, so that a different tokenizer_config.json eos
    /// becomes `tokenizer.ggml.eot_token_id`. Throws when the tokenizer is larger than the embedding or
    /// uses something the GGUF keys cannot say.
    public func ggufMetadata(embeddingRows rows: Int, eosID: Int?) throws -> [(String, GGUFValue)] {
        guard vocabularySize <= rows else {
            throw TokenizerError.badFile(path: source, reason: "has \(vocabularySize) tokens but the model's embedding has \(rows) rows")
        }
        guard definition.normalizers.isEmpty else {
            throw TokenizerError.unsupported(path: source, construct: "normalizer in GGUF (tokenizer.ggml keys have none)")
        }
        if definition.unknownToken != nil && encoder.byteIDs.contains(-1) {
            throw TokenizerError.unsupported(path: source, construct: "model.unk_token for bytes missing from the vocabulary in GGUF (llama.cpp drops them)")
        }
        if let token = definition.addedTokens.first(where: { $0.lstrip || $0.rstrip || $0.singleWord }) {
            throw TokenizerError.unsupported(path: source, construct: "lstrip/rstrip/single_word of added token \(quotedForMessage(token.content)) in GGUF")
        }
        guard let pre = Self.llamaPreTokenizers.first(where: {
            $0.steps == definition.preTokenizers && $0.ignoreMerges == definition.ignoreMerges
        }) else {
            throw TokenizerError.unsupported(path: source, construct: "pre-tokenizer in GGUF (llama.cpp names only smollm, gpt2, llama-bpe and qwen2 of those this module runs)")
        }
        if let merge = definition.merges.first(where: { $0.0.contains(" ") || $0.1.contains(" ") }) {
            throw TokenizerError.unsupported(path: source, construct: "merge of \(quotedForMessage(merge.0)) and \(quotedForMessage(merge.1)) in GGUF (a space inside a merge part cannot be written as \"left right\")")
        }
        var tokens: [GGUFValue] = []
        var types: [GGUFValue] = []
        tokens.reserveCapacity(rows)
        types.reserveCapacity(rows)
        var added: [Int: AddedToken] = [:]
        for token in definition.addedTokens { added[token.id] = token }
        for id in 0..<rows {
            guard let text = token(id) else {
                tokens.append(.string("[PAD\(id)]")); types.append(.int32(GGUFTokenType.unused.rawValue)); continue
            }
            tokens.append(.string(text))
            let type: GGUFTokenType = added[id].map { $0.special ? .control : .userDefined } ?? .normal
            types.append(.int32(type.rawValue))
        }
        var keys: [(String, GGUFValue)] = [
            (Self.modelKey, .string("gpt2")),
            (Self.preKey, .string(pre.name)),
            (Self.tokensKey, .array(.string, tokens)),
            (Self.tokenTypeKey, .array(.int32, types)),
            (Self.mergesKey, .array(.string, definition.merges.map { .string("\($0.0) \($0.1)") })),
            (Self.addBOSKey, .bool(addBOS)),
        ]
        if let eos = eosToken, let id = id(of: eos), id != eosID {
            keys.append((Self.eotIDKey, .uint32(UInt32(id))))
        }
        if let chatTemplate { keys.append((Self.chatTemplateKey, .string(chatTemplate))) }
        return keys
    }
}

private extension Int32 {
    var int: Int { Int(self) }
}
