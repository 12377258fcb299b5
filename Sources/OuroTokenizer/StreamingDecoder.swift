/// Decodes generated ids one at a time without splitting a character: a token may end in the middle of
/// a UTF-8 sequence (byte-level BPE splits emoji and CJK across tokens), so the incomplete tail is held
/// back until the next token completes it. The concatenated output equals `decode` of all the ids for
/// valid text.
public struct StreamingDecoder {
    public let tokenizer: Tokenizer
    public let skipSpecialTokens: Bool
    private var pending: [UInt8] = []

    public init(tokenizer: Tokenizer, skipSpecialTokens: Bool = false) {
        self.tokenizer = tokenizer
        self.skipSpecialTokens = skipSpecialTokens
    }

    /// The text that `id` completes (possibly empty).
    public mutating func push(_ id: Int) -> String {
        guard id >= 0 && id < tokenizer.idBytes.count, tokenizer.token(id) != nil else { return "" }
        if skipSpecialTokens && tokenizer.isSpecial[id] { return "" }
        pending += tokenizer.idBytes[id]
        let complete = Self.completePrefixLength(pending)
        guard complete > 0 else { return "" }
        let text = String(decoding: pending[..<complete], as: UTF8.self)
        pending.removeFirst(complete)
        return text
    }

    /// Whatever is still held back (an incomplete sequence at the very end becomes U+FFFD).
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// The length of `bytes` without a trailing sequence that is started but not yet complete.
    static func completePrefixLength(_ bytes: [UInt8]) -> Int {
        let end = bytes.count
        var start = end
        // Back over at most three continuation bytes to the lead byte of the last sequence.
        while start > 0 && end - start < 4 && bytes[start - 1] & 0xC0 == 0x80 { start -= 1 }
        guard start > 0 else { return end }
        let lead = bytes[start - 1]
        let needed: Int
        switch lead {
        case 0xC2...0xDF: needed = 2
        case 0xE0...0xEF: needed = 3
        case 0xF0...0xF4: needed = 4
        default: return end   // ASCII or an invalid byte: nothing to wait for
        }
        let have = end - (start - 1)
        return have < needed ? start - 1 : end
    }
}
