/// Finds added tokens in text the way Hugging Face's `AddedVocabulary` does: leftmost-longest matches
/// (its Aho-Corasick automaton), scanning on after each match's end; then `single_word` discards a
/// match inside a word, `lstrip`/`rstrip` widen it over the whitespace beside it.
struct AddedTokenMatcher {
    private struct Node {
        var children: [UInt8: Int32] = [:]
        var token: Int32 = -1
    }

    private var nodes = [Node()]
    private var isFirstByte = [Bool](repeating: false, count: 256)
    let tokens: [AddedToken]

    /// `patterns[i]` is the text matched for `tokens[i]` (normalized when the token is).
    init(tokens: [AddedToken], patterns: [[UInt8]]) {
        self.tokens = tokens
        for (index, pattern) in patterns.enumerated() where !pattern.isEmpty {
            var node = 0
            for byte in pattern {
                if let child = nodes[node].children[byte] {
                    node = Int(child)
                } else {
                    nodes.append(Node())
                    nodes[node].children[byte] = Int32(nodes.count - 1)
                    node = nodes.count - 1
                }
            }
            if nodes[node].token < 0 { nodes[node].token = Int32(index) }   // first listed wins a tie
            isFirstByte[Int(pattern[0])] = true
        }
    }

    var isEmpty: Bool { nodes.count == 1 }

    /// Splits `range` into pieces: `token` is the matched token's id, or nil for text between matches.
    func split(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> [(range: Range<Int>, token: Int?)] {
        var pieces: [(range: Range<Int>, token: Int?)] = []
        var pieceStart = range.lowerBound
        var i = range.lowerBound
        let end = range.upperBound
        while i < end {
            guard isFirstByte[Int(bytes[i])], let (index, matchEnd) = longestMatch(bytes, i, end) else { i += 1; continue }
            var start = i, stop = matchEnd
            i = matchEnd   // the automaton resumes after the match, even a discarded one
            let token = tokens[index]
            if token.singleWord {
                let wordBefore = start > range.lowerBound
                    && CharacterClass.of(decodeScalar(bytes, previousScalarStart(bytes, start)).value).contains(.word)
                let wordAfter = stop < end && CharacterClass.of(decodeScalar(bytes, stop).value).contains(.word)
                if wordBefore || wordAfter { continue }
            }
            if token.lstrip {
                var s = start
                while s > range.lowerBound {
                    let p = previousScalarStart(bytes, s)
                    if !CharacterClass.of(decodeScalar(bytes, p).value).contains(.space) { break }
                    s = p
                }
                start = max(s, pieceStart)
            }
            if token.rstrip {
                while stop < end {
                    let (scalar, length) = decodeScalar(bytes, stop)
                    if !CharacterClass.of(scalar).contains(.space) { break }
                    stop += length
                }
            }
            if pieceStart < start { pieces.append((pieceStart..<start, nil)) }
            pieces.append((start..<max(start, stop), token.id))
            pieceStart = stop
        }
        if pieceStart < end { pieces.append((pieceStart..<end, nil)) }
        return pieces
    }

    /// The longest pattern starting at `i`, as (token index, end).
    @inline(__always)
    private func longestMatch(_ bytes: UnsafeBufferPointer<UInt8>, _ i: Int, _ end: Int) -> (Int, Int)? {
        var node = 0, k = i
        var best: (Int, Int)?
        while k < end, let child = nodes[node].children[bytes[k]] {
            node = Int(child); k += 1
            if nodes[node].token >= 0 { best = (Int(nodes[node].token), k) }
        }
        return best
    }
}
