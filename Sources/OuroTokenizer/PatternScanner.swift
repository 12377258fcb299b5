/// The pre-tokenizer regular expressions real byte-level tokenizers use, each implemented as a
/// hand-written scanner over UTF-8 (no regex engine: these run over every byte of every text).
/// `recognizing(_:)` maps a pattern's exact source text to its scanner; any other pattern is refused
/// by the reader, by name.
enum PatternScanner: Equatable {
    /// GPT-2: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`.
    /// Without the final `|\s+` (`trailingSpaceAlternative` false) a lone whitespace character before
    /// a non-space is left unmatched.
    case gpt2(trailingSpaceAlternative: Bool)
    /// Llama 3 (`maxDigits` 3) and Qwen 2 (`maxDigits` 1):
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    case llama3(maxDigits: Int)

    static let gpt2Source = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    static let gpt2SourceWithoutTrailing = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)"#
    static let llama3Source = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let qwen2Source = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    static func recognizing(_ source: String) -> PatternScanner? {
        switch source {
        case gpt2Source: return .gpt2(trailingSpaceAlternative: true)
        case gpt2SourceWithoutTrailing: return .gpt2(trailingSpaceAlternative: false)
        case llama3Source: return .llama3(maxDigits: 3)
        case qwen2Source: return .llama3(maxDigits: 1)
        default: return nil
        }
    }

    /// Calls `match` with each match's byte range, left to right, as a regex `find_iter` would.
    @inline(__always)
    func forEachMatch(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ match: (Int, Int) -> Void) {
        switch self {
        case let .gpt2(trailing): Self.scanGPT2(bytes, range, trailing, match)
        case let .llama3(maxDigits): Self.scanLlama3(bytes, range, maxDigits, match)
        }
    }

    // MARK: GPT-2

    private static func scanGPT2(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ trailing: Bool,
                                 _ match: (Int, Int) -> Void) {
        let end = range.upperBound
        var i = range.lowerBound
        while i < end {
            let first = bytes[i]
            // 's 't 're 've 'm 'll 'd (case-sensitive)
            if first == 0x27, let length = contraction(bytes, i, end, caseInsensitive: false) {
                match(i, i + length); i += length; continue
            }
            var (scalar, length) = decodeScalar(bytes, i)
            var runStart = i
            // ` ?X+`: a space joins the run that follows it unless that run is whitespace.
            if first == 0x20 && i + 1 < end {
                let next = decodeScalar(bytes, i + 1)
                if !CharacterClass.of(next.value).contains(.space) {
                    runStart = i + 1; scalar = next.value; length = next.length
                }
            }
            let cls = CharacterClass.of(scalar)
            if runStart != i || !cls.contains(.space) {
                let kind = runKind(cls)
                var k = runStart + length
                while k < end {
                    let (s, n) = decodeScalar(bytes, k)
                    if runKind(CharacterClass.of(s)) != kind { break }
                    k += n
                }
                match(i, k); i = k; continue
            }
            // Whitespace: `\s+(?!\S)` leaves the last space for the next token when a non-space follows.
            let (k, last) = whitespaceRun(bytes, i, end)
            if k == end { match(i, k); i = k; continue }
            if last > i { match(i, last); i = last; continue }
            if trailing { match(i, k) }   // `\s+`; without it the character is no match
            i = k
        }
    }

    /// 0 letters, 1 numbers, 2 anything else that is not whitespace, 3 whitespace.
    @inline(__always)
    private static func runKind(_ cls: CharacterClass) -> Int {
        if cls.contains(.letter) { return 0 }
        if cls.contains(.number) { return 1 }
        if cls.contains(.space) { return 3 }
        return 2
    }

    /// The end of the whitespace run starting at `i`, and the start of its last character.
    @inline(__always)
    private static func whitespaceRun(_ bytes: UnsafeBufferPointer<UInt8>, _ i: Int, _ end: Int) -> (end: Int, last: Int) {
        var k = i, last = i
        while k < end {
            let (s, n) = decodeScalar(bytes, k)
            if !CharacterClass.of(s).contains(.space) { break }
            last = k; k += n
        }
        return (k, last)
    }

    /// Length of `'s 't 're 've 'm 'll 'd` at `i` (which holds an apostrophe), or nil.
    @inline(__always)
    private static func contraction(_ bytes: UnsafeBufferPointer<UInt8>, _ i: Int, _ end: Int, caseInsensitive: Bool) -> Int? {
        guard i + 1 < end else { return nil }
        func lower(_ b: UInt8) -> UInt8 { caseInsensitive && b >= 0x41 && b <= 0x5A ? b | 0x20 : b }
        let b1 = lower(bytes[i + 1])
        if b1 == UInt8(ascii: "s") || b1 == UInt8(ascii: "t") || b1 == UInt8(ascii: "m") || b1 == UInt8(ascii: "d") {
            return 2
        }
        guard i + 2 < end else { return nil }
        let b2 = lower(bytes[i + 2])
        if (b1 == UInt8(ascii: "r") && b2 == UInt8(ascii: "e")) || (b1 == UInt8(ascii: "v") && b2 == UInt8(ascii: "e"))
            || (b1 == UInt8(ascii: "l") && b2 == UInt8(ascii: "l")) {
            return 3
        }
        return nil
    }

    // MARK: Llama 3 / Qwen 2

    private static func scanLlama3(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ maxDigits: Int,
                                   _ match: (Int, Int) -> Void) {
        let end = range.upperBound
        var i = range.lowerBound
        func isNewline(_ s: UInt32) -> Bool { s == 0x0A || s == 0x0D }
        while i < end {
            if bytes[i] == 0x27, let length = contraction(bytes, i, end, caseInsensitive: true) {
                match(i, i + length); i += length; continue
            }
            let (scalar, length) = decodeScalar(bytes, i)
            let cls = CharacterClass.of(scalar)
            // `[^\r\n\p{L}\p{N}]?\p{L}+`
            var letters = -1
            if cls.contains(.letter) {
                letters = i
            } else if !cls.contains(.number) && !isNewline(scalar) && i + length < end
                        && CharacterClass.of(decodeScalar(bytes, i + length).value).contains(.letter) {
                letters = i + length
            }
            if letters >= 0 {
                var k = letters
                while k < end {
                    let (s, n) = decodeScalar(bytes, k)
                    if !CharacterClass.of(s).contains(.letter) { break }
                    k += n
                }
                match(i, k); i = k; continue
            }
            // `\p{N}{1,maxDigits}`
            if cls.contains(.number) {
                var k = i + length, count = 1
                while k < end && count < maxDigits {
                    let (s, n) = decodeScalar(bytes, k)
                    if !CharacterClass.of(s).contains(.number) { break }
                    k += n; count += 1
                }
                match(i, k); i = k; continue
            }
            // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
            var otherStart = -1
            if !cls.contains(.space) {
                otherStart = i
            } else if scalar == 0x20 && i + 1 < end {
                let next = CharacterClass.of(decodeScalar(bytes, i + 1).value)
                if next.isDisjoint(with: [.space, .letter, .number]) { otherStart = i + 1 }
            }
            if otherStart >= 0 {
                var k = otherStart
                while k < end {
                    let (s, n) = decodeScalar(bytes, k)
                    if !CharacterClass.of(s).isDisjoint(with: [.space, .letter, .number]) { break }
                    k += n
                }
                while k < end && (bytes[k] == 0x0A || bytes[k] == 0x0D) { k += 1 }
                match(i, k); i = k; continue
            }
            // Whitespace: `\s*[\r\n]+`, then `\s+(?!\S)`, then `\s+`.
            var k = i, last = i, afterNewline = -1
            while k < end {
                let (s, n) = decodeScalar(bytes, k)
                if !CharacterClass.of(s).contains(.space) { break }
                if isNewline(s) { afterNewline = k + n }
                last = k; k += n
            }
            if afterNewline > 0 { match(i, afterNewline); i = afterNewline; continue }
            if k == end || last == i { match(i, k); i = k; continue }
            match(i, last); i = last
        }
    }
}
