import Foundation
import OuroIO

/// A byte-level BPE tokenizer as Hugging Face `tokenizers` runs a `tokenizer.json` (GPT-2, SmolLM2 and
/// Ouro, Llama 3 and Qwen 2 style pre-tokenizers), or as a GGUF file stores it in `tokenizer.ggml.*`.
///
/// `encode` gives the ids `tokenizers` gives for `encode(text, add_special_tokens=False)`: added
/// tokens (specials such as `<|im_start|>`) are matched in the text first, the rest is normalized,
/// pre-tokenized and merged. Whatever the file uses that this type does not implement is refused when
/// loading, by name, rather than tokenized differently. Immutable after loading: encode and decode
/// may run on several threads at once.
public final class Tokenizer: @unchecked Sendable {
    /// The file it was read from (for messages).
    public let source: String
    /// The chat template (Jinja) from tokenizer_config.json or `tokenizer.chat_template`.
    public let chatTemplate: String?
    public let bosToken: String?
    public let eosToken: String?
    /// Whether prompts start with the bos token (tokenizer_config.json `add_bos_token`; `encode`
    /// never adds it, the caller does).
    public let addBOS: Bool
    /// Ids that end a generated reply: the eos token(s) of generation_config.json and
    /// tokenizer_config.json, and `<|im_end|>` when the chat template ends turns with it.
    public let stopTokenIDs: Set<Int>
    /// Ids run from 0 to `vocabularySize - 1` (some may be unused).
    public let vocabularySize: Int

    let encoder: BytePairEncoder
    let rawMatcher: AddedTokenMatcher
    let normalizedMatcher: AddedTokenMatcher
    let normalizers: [Normalization]
    let preTokenizers: [PreTokenizerStep]
    private let tokenText: [String?]
    private let textToID: [String: Int]
    /// The bytes each id decodes to (ByteLevel decoder).
    let idBytes: [[UInt8]]
    let isSpecial: [Bool]
    let definition: TokenizerDefinition

    init(_ definition: TokenizerDefinition, source: String) throws {
        self.source = source
        self.definition = definition
        chatTemplate = definition.chatTemplate
        bosToken = definition.bosToken
        eosToken = definition.eosToken
        addBOS = definition.addBOS
        normalizers = definition.normalizers
        preTokenizers = definition.preTokenizers

        var size = 0
        for entry in definition.vocabulary { size = max(size, entry.id + 1) }
        for token in definition.addedTokens { size = max(size, token.id + 1) }
        // Tables are indexed by id: a few huge ids in a small hostile file must not size them.
        let distinct = Set(definition.vocabulary.map(\.id) + definition.addedTokens.map(\.id)).count
        guard size <= distinct + Self.unusedIDAllowance else {
            throw TokenizerError.badFile(path: source, reason: "ids reach \(size - 1) for only \(distinct) tokens")
        }
        vocabularySize = size
        var texts = [String?](repeating: nil, count: size)
        var lookup: [String: Int] = [:]
        lookup.reserveCapacity(definition.vocabulary.count + definition.addedTokens.count)
        for entry in definition.vocabulary {
            texts[entry.id] = entry.token
            lookup[entry.token] = entry.id
        }
        var special = [Bool](repeating: false, count: size)
        for token in definition.addedTokens {
            texts[token.id] = token.content
            lookup[token.content] = token.id
            if token.special { special[token.id] = true }
        }
        tokenText = texts
        textToID = lookup
        isSpecial = special
        idBytes = texts.map { text in
            guard let text else { return [] }
            return ByteLevel.decode(text) ?? Array(text.utf8)
        }

        // The model's ids for the 256 byte characters (-1: not in the vocabulary; SmolLM2 lacks a few
        // control bytes).
        var modelIDs: [String: Int] = [:]
        modelIDs.reserveCapacity(definition.vocabulary.count)
        for entry in definition.vocabulary { modelIDs[entry.token] = entry.id }
        let byteIDs = (0..<256).map { Int32(modelIDs[String(ByteLevel.byteToScalar[$0])] ?? -1) }
        var table = PairTable(capacity: definition.merges.count)
        for (rank, (left, right)) in definition.merges.enumerated() {
            guard let a = modelIDs[left], let b = modelIDs[right] else {
                let missing = modelIDs[left] == nil ? left : right
                throw TokenizerError.badFile(path: source, reason: "model.merges[\(rank)] uses \(quotedForMessage(missing)), which is not in model.vocab")
            }
            guard let merged = modelIDs[left + right] else {
                throw TokenizerError.badFile(path: source, reason: "model.merges[\(rank)] makes \(quotedForMessage(left + right)), which is not in model.vocab")
            }
            table.insert(Int32(a), Int32(b), rank: Int32(rank), merged: Int32(merged))
        }
        var wholeWords: [[UInt8]: Int32]?
        if definition.ignoreMerges {
            var words: [[UInt8]: Int32] = [:]
            for entry in definition.vocabulary {
                if let bytes = ByteLevel.decode(entry.token) { words[bytes] = Int32(entry.id) }
            }
            wholeWords = words
        }
        encoder = BytePairEncoder(byteIDs: byteIDs, merges: table, wholeWords: wholeWords,
                                  unknownID: definition.unknownToken.flatMap { modelIDs[$0] }.map(Int32.init),
                                  fuseUnknown: definition.fuseUnknown)

        // Hugging Face matches tokens marked `normalized` in the normalized text, the others in the raw text.
        let raw = definition.addedTokens.filter { !$0.normalized }
        let normalized = definition.addedTokens.filter { $0.normalized }
        rawMatcher = AddedTokenMatcher(tokens: raw, patterns: raw.map { Array($0.content.utf8) })
        let normalizers = definition.normalizers
        normalizedMatcher = AddedTokenMatcher(tokens: normalized, patterns: normalized.map {
            Array(Self.normalize($0.content, normalizers).utf8)
        })

        var stops = Set(definition.extraStopIDs)
        if let eos = definition.eosToken, let id = lookup[eos] { stops.insert(id) }
        if let id = definition.eosTokenID { stops.insert(id) }
        if let template = definition.chatTemplate, template.contains("<|im_end|>"), let id = lookup["<|im_end|>"] {
            stops.insert(id)
        }
        stopTokenIDs = stops.filter { $0 >= 0 && $0 < size }
    }

    /// How many ids below the highest may be without a token (padding rows of real vocabularies).
    static let unusedIDAllowance = 1 << 16

    /// The text of a token: its vocabulary spelling (byte-level characters, e.g. `Ġthe`) or an added
    /// token's content. Nil for an id without a token.
    public func token(_ id: Int) -> String? {
        guard id >= 0 && id < tokenText.count else { return nil }
        return tokenText[id]
    }

    /// The id of a vocabulary spelling or added token's content.
    public func id(of token: String) -> Int? { textToID[token] }

    /// Whether `id` is an added token marked special (skipped by `decode(_:skipSpecialTokens: true)`).
    public func isSpecialToken(_ id: Int) -> Bool { id >= 0 && id < isSpecial.count && isSpecial[id] }

    // MARK: Encoding

    /// The ids of `text`. Added tokens written in the text (`<|im_start|>`) become their ids; no bos
    /// token is added.
    public func encode(_ text: String) -> [Int] {
        var utf8 = Array(text.utf8)
        var output: [Int32] = []
        output.reserveCapacity(utf8.count / 3 + 4)
        var cache = WordCache(expectedBytes: utf8.count)
        let pieces = utf8.withUnsafeBufferPointer { rawMatcher.isEmpty ? [(range: 0..<$0.count, token: nil)] : rawMatcher.split($0, 0..<$0.count) }
        for piece in pieces {
            if let token = piece.token { output.append(Int32(token)); continue }
            if normalizers.isEmpty {
                encodeNormalized(&utf8, piece.range, cache: &cache, into: &output)
            } else {
                let original = utf8.withUnsafeBufferPointer { String(decoding: UnsafeBufferPointer(rebasing: $0[piece.range]), as: UTF8.self) }
                var normalized = Array(Self.normalize(original, normalizers).utf8)
                encodeNormalized(&normalized, 0..<normalized.count, cache: &cache, into: &output)
            }
        }
        return output.map(Int.init)
    }

    /// Normalized text: added tokens marked `normalized`, then pre-tokenization and BPE.
    private func encodeNormalized(_ buffer: inout [UInt8], _ range: Range<Int>, cache: inout WordCache, into output: inout [Int32]) {
        let pieces = buffer.withUnsafeBufferPointer { normalizedMatcher.isEmpty ? [(range: range, token: nil)] : normalizedMatcher.split($0, range) }
        for piece in pieces {
            if let token = piece.token { output.append(Int32(token)); continue }
            let words = preTokenize(&buffer, piece.range)
            buffer.withUnsafeBufferPointer { bytes in
                for word in words {
                    let slice = UnsafeBufferPointer(rebasing: bytes[word])
                    cache.encode(slice, with: encoder, into: &output)
                }
            }
        }
    }

    static func normalize(_ text: String, _ normalizers: [Normalization]) -> String {
        var result = text
        for normalizer in normalizers {
            switch normalizer {
            case .nfc: result = result.precomposedStringWithCanonicalMapping
            case .nfkc: result = result.precomposedStringWithCompatibilityMapping
            }
        }
        return result
    }

    // MARK: Decoding

    /// The text of `ids` (the ByteLevel decoder: bytes joined, invalid UTF-8 replaced by U+FFFD).
    /// Ids without a token are skipped, as `tokenizers` does.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
        var bytes: [UInt8] = []
        for id in ids {
            guard id >= 0 && id < idBytes.count, tokenText[id] != nil else { continue }
            if skipSpecialTokens && isSpecial[id] { continue }
            bytes += idBytes[id]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
