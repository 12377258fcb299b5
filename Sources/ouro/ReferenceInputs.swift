import ArgumentParser
import Foundation
import GGUF
import OuroIO
import OuroModel
import OuroTokenizer
import OuroValidation

/// `--text-file` with its window options, shared by `reference` and `validate --baseline`.
struct TextWindowOptions: ParsableArguments {
    @Option(help: "UTF-8 text cut into perplexity windows (as llama-perplexity does).")
    var textFile: String?

    @Option(help: "Tokens per window with --text-file; the second half of each window is scored for perplexity.")
    var ctx = 512

    @Option(help: "At most this many windows with --text-file (default: all that fit).")
    var chunks: Int?

    @Option(help: "Tokenizer for text: a folder with tokenizer.json, a tokenizer.json, or a GGUF file (default: the model's own).")
    var tokenizer: String?

    func check() throws {
        if textFile == nil {
            if chunks != nil { throw ValidationError("'--chunks' needs '--text-file'") }
            if ctx != 512 { throw ValidationError("'--ctx' needs '--text-file'") }
        }
        if !(2...1_000_000).contains(ctx) { throw ValidationError("'--ctx' takes a window of 2 to 1000000 tokens") }
        if let chunks, chunks < 1 { throw ValidationError("'--chunks' takes 1 or more") }
    }

    /// The windows of the text file, tokenized with `--tokenizer` or the model's tokenizer.
    func windows(model: String) throws -> [ReferenceInput] {
        guard let textFile else { return [] }
        let text = try readText(textFile)
        let tokens = try tokenizerFor(model: model, explicit: tokenizer).encode(text)
        let windows = TextWindows.cut(tokens, context: ctx, chunks: chunks)
        guard !windows.isEmpty else {
            throw TextFileError(path: textFile, problem: "has \(tokens.count) tokens, fewer than one window of --ctx \(ctx)")
        }
        if let chunks, windows.count < chunks {
            printError("ouro: \(textFile): \(tokens.count) tokens hold \(windows.count) windows of \(ctx), not \(chunks); using \(windows.count)")
        }
        return windows
    }
}

/// `--tokenizer` when given, else the model's own.
func tokenizerFor(model: String, explicit: String?) throws -> Tokenizer {
    guard let explicit else { return try loadTokenizer(model) }
    return explicit.hasSuffix(".json") ? try Tokenizer(tokenizerJSON: explicit) : try loadTokenizer(explicit)
}

/// The tokenizer for showing text in reports: `--tokenizer` (which must load), else the model's
/// own when it has one (nil otherwise: ids are shown).
func optionalTokenizer(model: String, explicit: String?) throws -> Tokenizer? {
    if explicit != nil { return try tokenizerFor(model: model, explicit: explicit) }
    return try? loadTokenizer(model)
}

struct ReferenceInputError: Error, CustomStringConvertible {
    let path: String
    let problem: String
    var description: String { "\(path): \(problem)" }
}

/// Loads a model that may serve as a reference: a checkpoint folder, or a GGUF file that records
/// holding the source exactly (`ouro.conversion.lossless`). Anything else is refused unless allowed.
func loadReferenceWeights(_ path: String, allowLossy: Bool, flag: String) throws -> OuroWeights {
    let weights = try loadWeights(path)
    if weights.storesSourceExactly != true && !allowLossy {
        let type = weights.fileType?.name ?? weights.quantizationRecipe ?? "mixed"
        let why = weights.storesSourceExactly == false ? "does not hold its source exactly" : "does not say it holds its source exactly"
        throw ReferenceInputError(path: path, problem: "is \(type) and \(why): a reference needs a checkpoint folder or an f32/bf16/f16 file converted losslessly (\(flag) to use it anyway)")
    }
    return weights
}

/// `--prompts P.json`: an array whose items are strings (tokenized) or arrays of token ids.
func loadPrompts(_ path: String, vocab: Int, tokenizer: () throws -> Tokenizer) throws -> [ReferenceInput] {
    let file = try MappedFile(path: path)
    let root: JSONValue
    do { root = try JSONParser.parse(file.bytes) } catch let failure as JSONParser.Failure {
        throw ReferenceInputError(path: path, problem: "is not valid JSON: \(failure.reason)")
    }
    guard case let .array(items) = root else {
        throw ReferenceInputError(path: path, problem: "is \(root.kindName); expected an array of prompts (strings or arrays of token ids)")
    }
    guard !items.isEmpty else { throw ReferenceInputError(path: path, problem: "holds no prompts") }
    var loaded: Tokenizer?
    return try items.enumerated().map { n, item in
        let ids: [Int]
        switch item {
        case let .string(text):
            if loaded == nil { loaded = try tokenizer() }
            ids = loaded!.encode(text)
        case let .array(values):
            ids = try values.enumerated().map { i, value in
                guard let id = value.nonNegativeInt().value, id < vocab else {
                    throw ReferenceInputError(path: path, problem: "prompt \(n), item \(i): \(value.nonNegativeInt().value == nil ? value.nonNegativeInt().problem : "is not below the vocabulary size \(vocab)")")
                }
                return id
            }
        default:
            throw ReferenceInputError(path: path, problem: "prompt \(n) is \(item.kindName); expected a string or an array of token ids")
        }
        guard !ids.isEmpty else { throw ReferenceInputError(path: path, problem: "prompt \(n) is empty") }
        // Each position predicts the prompt's next token; the last one has none in the prompt.
        return ReferenceInput(tokens: ids, labels: Array(ids.dropFirst()) + [-100])
    }
}

/// `--tokens FILE`: one sequence of token ids per non-empty line (separated by commas, spaces or tabs);
/// each line is its own context, and each position's label is the line's next token.
func loadTokenLines(_ path: String, vocab: Int) throws -> [ReferenceInput] {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw ReferenceInputError(path: path, problem: "cannot be read")
    }
    var inputs: [ReferenceInput] = []
    for (n, line) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
        let fields = line.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" || $0 == "\r" })
        guard !fields.isEmpty else { continue }
        let ids = try fields.map { field -> Int in
            guard let id = Int(field), id >= 0 else {
                throw ReferenceInputError(path: path, problem: "line \(n + 1): '\(field.prefix(20))' is not a token id")
            }
            guard id < vocab else {
                throw ReferenceInputError(path: path, problem: "line \(n + 1): token \(id) is not below the vocabulary size \(vocab)")
            }
            return id
        }
        inputs.append(ReferenceInput(tokens: ids, labels: Array(ids.dropFirst()) + [-100]))
    }
    guard !inputs.isEmpty else { throw ReferenceInputError(path: path, problem: "holds no token sequences") }
    return inputs
}
