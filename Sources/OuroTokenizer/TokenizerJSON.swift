import Foundation
import OuroIO

extension Tokenizer {
    /// Loads a checkpoint folder's `tokenizer.json`, with `tokenizer_config.json` (chat template,
    /// bos/eos, `add_bos_token`), `chat_template.jinja` (when the config has no template) and
    /// `generation_config.json` (eos ids) when present.
    public static func load(folder: String) throws -> Tokenizer {
        let url = URL(fileURLWithPath: folder)
        let path = url.appendingPathComponent("tokenizer.json").path
        guard FileManager.default.fileExists(atPath: path) else {
            throw TokenizerError.badFile(path: folder, reason: "has no tokenizer.json")
        }
        var definition = try TokenizerFileReader.readTokenizer(path: path)
        let configPath = url.appendingPathComponent("tokenizer_config.json").path
        if FileManager.default.fileExists(atPath: configPath) {
            try TokenizerFileReader.readTokenizerConfig(path: configPath, into: &definition)
        }
        // Newer transformers save the template beside the config instead of inside it.
        let templatePath = url.appendingPathComponent("chat_template.jinja").path
        if definition.chatTemplate == nil, FileManager.default.fileExists(atPath: templatePath) {
            guard let data = FileManager.default.contents(atPath: templatePath), let text = String(data: data, encoding: .utf8) else {
                throw TokenizerError.badFile(path: templatePath, reason: "cannot be read as UTF-8 text")
            }
            definition.chatTemplate = text
        }
        let generationPath = url.appendingPathComponent("generation_config.json").path
        if FileManager.default.fileExists(atPath: generationPath) {
            try TokenizerFileReader.readGenerationConfig(path: generationPath, into: &definition)
        }
        return try Tokenizer(definition, source: path)
    }

    /// Loads a `tokenizer.json` alone.
    public convenience init(tokenizerJSON path: String) throws {
        try self.init(TokenizerFileReader.readTokenizer(path: path), source: path)
    }
}

/// Reads the Hugging Face files into a `TokenizerDefinition`, naming the file and the field of every problem.
struct TokenizerFileReader {
    let path: String

    static func parse(path: String) throws -> JSONValue {
        let file = try MappedFile(path: path)   // FileIOError names the path
        return try parse(bytes: file.bytes, path: path)
    }

    static func parse(bytes: UnsafeRawBufferPointer, path: String) throws -> JSONValue {
        guard isValidUTF8(bytes) else { throw TokenizerError.badFile(path: path, reason: "is not valid UTF-8") }
        do {
            return try JSONParser.parse(bytes)
        } catch let failure as JSONParser.Failure {
            throw TokenizerError.badFile(path: path, reason: "is not valid JSON: \(failure.reason)")
        }
    }

    // MARK: tokenizer.json

    static func readTokenizer(path: String) throws -> TokenizerDefinition {
        try readTokenizer(root: parse(path: path), path: path)
    }

    /// The bytes of a tokenizer.json (for the fuzzer; `path` names it in errors).
    static func readTokenizer(bytes: UnsafeRawBufferPointer, path: String) throws -> TokenizerDefinition {
        try readTokenizer(root: parse(bytes: bytes, path: path), path: path)
    }

    static func readTokenizer(root: JSONValue, path: String) throws -> TokenizerDefinition {
        let reader = TokenizerFileReader(path: path)
        guard case .object = root else { throw reader.fail("the document", "is \(root.kindName), not an object") }
        for field in ["truncation", "padding"] {
            if let value = root[field], !isNull(value) { throw reader.unsupported("\(field) (set to non-null)") }
        }
        guard let model = root["model"] else { throw reader.fail("model", "is missing") }
        var definition = try reader.readModel(model)
        definition.addedTokens = try reader.readAddedTokens(root["added_tokens"])
        definition.normalizers = try reader.readNormalizer(root["normalizer"], field: "normalizer")
        definition.preTokenizers = try reader.readPreTokenizer(root["pre_tokenizer"], field: "pre_tokenizer")
        guard definition.preTokenizers.contains(where: { if case .byteLevel = $0 { return true } else { return false } }) else {
            throw reader.unsupported("pre_tokenizer without a ByteLevel step (only byte-level BPE is implemented)")
        }
        try reader.checkPostProcessor(root["post_processor"], field: "post_processor")
        try reader.checkDecoder(root["decoder"], field: "decoder")
        return definition
    }

    func readModel(_ model: JSONValue) throws -> TokenizerDefinition {
        _ = try object(model, "model")
        if let type = model["type"] {
            let name = try string(type, "model.type")
            guard name == "BPE" else { throw unsupported("model.type \(quotedForMessage(name))") }
        }
        if let dropout = model["dropout"], !isNull(dropout) {
            guard case let .number(text) = dropout, Double(text) == 0 else { throw unsupported("model.dropout (BPE dropout)") }
        }
        if try bool(model["byte_fallback"], "model.byte_fallback", default: false) {
            throw unsupported("model.byte_fallback (true)")
        }
        for field in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let value = model[field], !isNull(value), try string(value, "model.\(field)") != "" {
                throw unsupported("model.\(field)")
            }
        }
        let ignoreMerges = try bool(model["ignore_merges"], "model.ignore_merges", default: false)
        var unknownToken: String?
        if let value = model["unk_token"], !isNull(value) { unknownToken = try string(value, "model.unk_token") }
        let fuseUnknown = try bool(model["fuse_unk"], "model.fuse_unk", default: false)

        guard let vocabValue = model["vocab"] else { throw fail("model.vocab", "is missing") }
        var vocabulary: [(token: String, id: Int)] = []
        let members = try object(vocabValue, "model.vocab")
        vocabulary.reserveCapacity(members.count)
        var seenIDs = Set<Int>()
        for (token, value) in members {
            let id = try tokenID(value, "model.vocab[\(quotedForMessage(token))]")
            guard seenIDs.insert(id).inserted else { throw fail("model.vocab[\(quotedForMessage(token))]", "repeats id \(id)") }
            vocabulary.append((token, id))
        }

        guard let mergesValue = model["merges"] else { throw fail("model.merges", "is missing") }
        guard case let .array(items) = mergesValue else { throw fail("model.merges", "is \(mergesValue.kindName), not an array") }
        var merges: [(String, String)] = []
        merges.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            let field = "model.merges[\(index)]"
            switch item {
            case let .string(text):
                // "a b": one space separates the two parts (byte-level tokens never contain a space).
                let parts = text.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                    throw fail(field, "is \(quotedForMessage(text)), not two tokens separated by one space")
                }
                merges.append((String(parts[0]), String(parts[1])))
            case let .array(pair):
                guard pair.count == 2, case let .string(a) = pair[0], case let .string(b) = pair[1] else {
                    throw fail(field, "is not a pair of strings")
                }
                merges.append((a, b))
            default:
                throw fail(field, "is \(item.kindName), not a string or a pair")
            }
        }
        if let unknownToken, !vocabulary.contains(where: { $0.token == unknownToken }) {
            throw fail("model.unk_token", "is \(quotedForMessage(unknownToken)), which is not in model.vocab")
        }
        return TokenizerDefinition(vocabulary: vocabulary, merges: merges, ignoreMerges: ignoreMerges,
                                   unknownToken: unknownToken, fuseUnknown: fuseUnknown)
    }

    func readAddedTokens(_ value: JSONValue?) throws -> [AddedToken] {
        guard let value, !isNull(value) else { return [] }
        guard case let .array(items) = value else { throw fail("added_tokens", "is \(value.kindName), not an array") }
        var tokens: [AddedToken] = []
        for (index, item) in items.enumerated() {
            let field = "added_tokens[\(index)]"
            _ = try object(item, field)
            guard let idValue = item["id"] else { throw fail("\(field).id", "is missing") }
            guard let contentValue = item["content"] else { throw fail("\(field).content", "is missing") }
            let content = try string(contentValue, "\(field).content")
            guard !content.isEmpty else { throw fail("\(field).content", "is empty") }
            let special = try bool(item["special"], "\(field).special", default: false)
            tokens.append(AddedToken(
                id: try tokenID(idValue, "\(field).id"), content: content, special: special,
                singleWord: try bool(item["single_word"], "\(field).single_word", default: false),
                lstrip: try bool(item["lstrip"], "\(field).lstrip", default: false),
                rstrip: try bool(item["rstrip"], "\(field).rstrip", default: false),
                normalized: try bool(item["normalized"], "\(field).normalized", default: !special)))
        }
        return tokens
    }

    func readNormalizer(_ value: JSONValue?, field: String) throws -> [Normalization] {
        guard let value, !isNull(value) else { return [] }
        let type = try typeName(value, field)
        switch type {
        case "NFC": return [.nfc]
        case "NFKC": return [.nfkc]
        case "Sequence":
            guard let list = value["normalizers"], case let .array(items) = list else {
                throw fail("\(field).normalizers", "is missing or not an array")
            }
            return try items.enumerated().flatMap { try readNormalizer($1, field: "\(field).normalizers[\($0)]") }
        default:
            throw unsupported("\(field) \(quotedForMessage(type))")
        }
    }

    func readPreTokenizer(_ value: JSONValue?, field: String) throws -> [PreTokenizerStep] {
        guard let value, !isNull(value) else { return [] }
        let type = try typeName(value, field)
        switch type {
        case "ByteLevel":
            return [.byteLevel(addPrefixSpace: try bool(value["add_prefix_space"], "\(field).add_prefix_space", default: true),
                               useRegex: try bool(value["use_regex"], "\(field).use_regex", default: true))]
        case "Digits":
            return [.digits(individual: try bool(value["individual_digits"], "\(field).individual_digits", default: false))]
        case "Split":
            guard let patternValue = value["pattern"] else { throw fail("\(field).pattern", "is missing") }
            let pattern: SplitPattern
            if let literal = patternValue["String"] {
                pattern = .literal(Array(try string(literal, "\(field).pattern.String").utf8))
            } else if let regex = patternValue["Regex"] {
                let source = try string(regex, "\(field).pattern.Regex")
                guard let scanner = PatternScanner.recognizing(source) else {
                    throw unsupported("\(field).pattern.Regex \(quotedForMessage(source))")
                }
                pattern = .scanner(scanner)
            } else {
                throw fail("\(field).pattern", "has neither String nor Regex")
            }
            guard let behaviorValue = value["behavior"] else { throw fail("\(field).behavior", "is missing") }
            let behaviorName = try string(behaviorValue, "\(field).behavior")
            guard let behavior = SplitBehavior(rawValue: behaviorName) else {
                throw unsupported("\(field).behavior \(quotedForMessage(behaviorName))")
            }
            return [.split(pattern, behavior, invert: try bool(value["invert"], "\(field).invert", default: false))]
        case "Sequence":
            guard let list = value["pretokenizers"], case let .array(items) = list else {
                throw fail("\(field).pretokenizers", "is missing or not an array")
            }
            return try items.enumerated().flatMap { try readPreTokenizer($1, field: "\(field).pretokenizers[\($0)]") }
        default:
            throw unsupported("\(field) \(quotedForMessage(type))")
        }
    }

    /// Post-processors only act when special tokens are added; ByteLevel's only trims offsets.
    func checkPostProcessor(_ value: JSONValue?, field: String) throws {
        guard let value, !isNull(value) else { return }
        let type = try typeName(value, field)
        switch type {
        case "ByteLevel": return
        case "Sequence":
            guard let list = value["processors"], case let .array(items) = list else {
                throw fail("\(field).processors", "is missing or not an array")
            }
            for (index, item) in items.enumerated() { try checkPostProcessor(item, field: "\(field).processors[\(index)]") }
        default:
            throw unsupported("\(field) \(quotedForMessage(type))")
        }
    }

    func checkDecoder(_ value: JSONValue?, field: String) throws {
        guard let value, !isNull(value) else { throw unsupported("\(field) null (only the ByteLevel decoder is implemented)") }
        let type = try typeName(value, field)
        switch type {
        case "ByteLevel": return
        case "Sequence":
            guard let list = value["decoders"], case let .array(items) = list, !items.isEmpty else {
                throw fail("\(field).decoders", "is missing, empty or not an array")
            }
            for (index, item) in items.enumerated() { try checkDecoder(item, field: "\(field).decoders[\(index)]") }
        default:
            throw unsupported("\(field) \(quotedForMessage(type))")
        }
    }

    // MARK: tokenizer_config.json, generation_config.json

    static func readTokenizerConfig(path: String, into definition: inout TokenizerDefinition) throws {
        let reader = TokenizerFileReader(path: path)
        let root = try parse(path: path)
        _ = try reader.object(root, "the document")
        if let template = root["chat_template"], !isNull(template) {
            switch template {
            case let .string(text): definition.chatTemplate = text
            case let .array(items):
                // A list of named templates: the one named "default" is the chat template.
                for (index, item) in items.enumerated() {
                    let field = "chat_template[\(index)]"
                    guard let name = item["name"], let text = item["template"] else { throw reader.fail(field, "needs name and template") }
                    if try reader.string(name, "\(field).name") == "default" { definition.chatTemplate = try reader.string(text, "\(field).template") }
                }
            default:
                throw reader.fail("chat_template", "is \(template.kindName), not a string")
            }
        }
        definition.bosToken = try reader.tokenText(root["bos_token"], "bos_token") ?? definition.bosToken
        definition.eosToken = try reader.tokenText(root["eos_token"], "eos_token") ?? definition.eosToken
        definition.addBOS = try reader.bool(root["add_bos_token"], "add_bos_token", default: false)
    }

    static func readGenerationConfig(path: String, into definition: inout TokenizerDefinition) throws {
        let reader = TokenizerFileReader(path: path)
        let root = try parse(path: path)
        _ = try reader.object(root, "the document")
        if let eos = root["eos_token_id"], !isNull(eos) {
            if case let .array(items) = eos {
                definition.extraStopIDs += try items.enumerated().map { try reader.nonNegative($1, "eos_token_id[\($0)]") }
            } else {
                definition.extraStopIDs.append(try reader.nonNegative(eos, "eos_token_id"))
            }
        }
        if let bos = root["bos_token_id"], !isNull(bos) { definition.bosTokenID = try reader.nonNegative(bos, "bos_token_id") }
    }

    /// A special token written as a string or as an AddedToken object (`{"content": ...}`).
    func tokenText(_ value: JSONValue?, _ field: String) throws -> String? {
        guard let value, !isNull(value) else { return nil }
        if case let .string(text) = value { return text }
        guard let content = value["content"] else { throw fail(field, "is \(value.kindName), not a string or a token object") }
        return try string(content, "\(field).content")
    }

    // MARK: Field access

    func fail(_ field: String, _ problem: String) -> TokenizerError {
        .badFile(path: path, reason: "\(field) \(problem)")
    }

    func unsupported(_ construct: String) -> TokenizerError {
        .unsupported(path: path, construct: construct)
    }

    static func isNull(_ value: JSONValue) -> Bool { if case .null = value { return true } else { return false } }
    func isNull(_ value: JSONValue) -> Bool { Self.isNull(value) }

    func object(_ value: JSONValue, _ field: String) throws -> [(key: String, value: JSONValue)] {
        guard case let .object(members) = value else { throw fail(field, "is \(value.kindName), not an object") }
        return members
    }

    func string(_ value: JSONValue, _ field: String) throws -> String {
        guard case let .string(text) = value else { throw fail(field, "is \(value.kindName), not a string") }
        return text
    }

    func bool(_ value: JSONValue?, _ field: String, default defaultValue: Bool) throws -> Bool {
        guard let value, !isNull(value) else { return defaultValue }
        guard case let .bool(flag) = value else { throw fail(field, "is \(value.kindName), not a boolean") }
        return flag
    }

    func nonNegative(_ value: JSONValue, _ field: String) throws -> Int {
        let (number, problem) = value.nonNegativeInt()
        guard let number else { throw fail(field, problem) }
        return number
    }

    /// Ids index tables sized by the largest one, so a hostile file cannot ask for a huge allocation.
    static let idLimit = 1 << 24

    func tokenID(_ value: JSONValue, _ field: String) throws -> Int {
        let id = try nonNegative(value, field)
        guard id < Self.idLimit else { throw fail(field, "is too large (\(id); ids must be below \(Self.idLimit))") }
        return id
    }

    func typeName(_ value: JSONValue, _ field: String) throws -> String {
        _ = try object(value, field)
        guard let type = value["type"] else { throw fail("\(field).type", "is missing") }
        return try string(type, "\(field).type")
    }
}
