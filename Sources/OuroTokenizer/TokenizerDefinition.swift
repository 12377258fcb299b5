/// What a tokenizer is made of, as read from a `tokenizer.json` or from GGUF `tokenizer.ggml.*` keys,
/// before the run-time tables are built. Only the constructs this module implements can be expressed
/// here: the readers refuse everything else by name.
struct TokenizerDefinition {
    /// Model vocabulary: token text (byte-level characters) and id.
    var vocabulary: [(token: String, id: Int)]
    /// BPE merges in rank order (rank = index).
    var merges: [(String, String)]
    /// A word already in the vocabulary is emitted whole, without merging (Llama 3's `ignore_merges`).
    var ignoreMerges = false
    /// A byte whose character is not in the vocabulary becomes this token (`model.unk_token`), or is
    /// dropped when nil, as Hugging Face's BPE does; `fuseUnknown` makes a run of them one token.
    var unknownToken: String?
    var fuseUnknown = false
    var addedTokens: [AddedToken] = []
    var normalizers: [Normalization] = []
    var preTokenizers: [PreTokenizerStep] = []

    // From tokenizer_config.json / generation_config.json (or the GGUF keys).
    var chatTemplate: String?
    var bosToken: String?
    var eosToken: String?
    var addBOS = false
    /// Ids that end generation, besides the eos token (generation_config.json `eos_token_id`, the
    /// GGUF's eos id).
    var extraStopIDs: [Int] = []
    var bosTokenID: Int?
    var eosTokenID: Int?
}

/// A token matched in the text before pre-tokenization (Hugging Face `added_tokens`).
struct AddedToken: Equatable {
    var id: Int
    var content: String
    var special: Bool
    var singleWord = false
    var lstrip = false
    var rstrip = false
    /// Matched in the normalized text (true) or in the raw text (false).
    var normalized = false
}

enum Normalization: Equatable {
    case nfc, nfkc
}

enum PreTokenizerStep: Equatable {
    /// GPT-2's byte-level step: optional leading space, optional split by the GPT-2 pattern.
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
    /// Numbers split off (each digit alone when `individual`, runs of digits otherwise).
    case digits(individual: Bool)
    /// Split by a pattern this module implements, with Hugging Face's delimiter behaviours.
    case split(SplitPattern, SplitBehavior, invert: Bool)
}

enum SplitBehavior: String, Equatable {
    case removed = "Removed", isolated = "Isolated", mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext", contiguous = "Contiguous"
}

enum SplitPattern: Equatable {
    /// A literal string.
    case literal([UInt8])
    /// One of the regular expressions real tokenizers use, implemented by a hand-written scanner.
    case scanner(PatternScanner)
}
