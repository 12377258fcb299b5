/// Pre-tokenization: the pipeline of splitting steps, over byte ranges of a working buffer. A step that
/// changes text (ByteLevel's `add_prefix_space`) appends the new text to the buffer and points at it.
extension Tokenizer {
    func preTokenize(_ buffer: inout [UInt8], _ range: Range<Int>) -> [Range<Int>] {
        guard !range.isEmpty else { return [] }
        var pieces = [range]
        for step in preTokenizers {
            var next: [Range<Int>] = []
            next.reserveCapacity(pieces.count * 2)
            switch step {
            case let .byteLevel(addPrefixSpace, useRegex):
                for var piece in pieces {
                    if addPrefixSpace && buffer[piece.lowerBound] != 0x20 {
                        let copy = Array(buffer[piece])
                        let start = buffer.count
                        buffer.append(0x20)
                        buffer.append(contentsOf: copy)
                        piece = start..<buffer.count
                    }
                    if useRegex {
                        buffer.withUnsafeBufferPointer { Self.isolate(.gpt2(trailingSpaceAlternative: true), $0, piece, into: &next) }
                    } else {
                        next.append(piece)
                    }
                }
            case let .digits(individual):
                buffer.withUnsafeBufferPointer { bytes in
                    for piece in pieces { Self.splitDigits(bytes, piece, individual: individual, into: &next) }
                }
            case let .split(pattern, behavior, invert):
                buffer.withUnsafeBufferPointer { bytes in
                    for piece in pieces {
                        if case let .scanner(scanner) = pattern, behavior == .isolated {
                            Self.isolate(scanner, bytes, piece, into: &next)   // the common case, without the event list
                        } else {
                            let events = Self.events(pattern, bytes, piece, invert: invert)
                            Self.apply(behavior, events, into: &next)
                        }
                    }
                }
            }
            pieces = next
        }
        return pieces
    }

    /// Every match and every gap between matches, as separate pieces (`Isolated`).
    @inline(__always)
    static func isolate(_ scanner: PatternScanner, _ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>,
                        into output: inout [Range<Int>]) {
        var previous = range.lowerBound
        scanner.forEachMatch(bytes, range) { start, end in
            if previous < start { output.append(previous..<start) }
            output.append(start..<end)
            previous = end
        }
        if previous < range.upperBound { output.append(previous..<range.upperBound) }
    }

    /// `Digits`: numbers (`char::is_numeric`) isolated, one per piece or in runs.
    static func splitDigits(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, individual: Bool,
                            into output: inout [Range<Int>]) {
        var i = range.lowerBound
        var runStart = i
        var runIsNumber = false
        while i < range.upperBound {
            let (scalar, length) = bytes[i] < 0x80
                ? (UInt32(bytes[i]), 1) : decodeScalar(bytes, i)
            let isNumber = scalar < 0x80 ? (scalar >= 0x30 && scalar <= 0x39) : CharacterClass.of(scalar).contains(.number)
            if isNumber {
                if individual || !runIsNumber {
                    if runStart < i { output.append(runStart..<i) }
                    runStart = i
                }
                runIsNumber = true
            } else if runIsNumber {
                output.append(runStart..<i)
                runStart = i
                runIsNumber = false
            }
            i += length
        }
        if runStart < range.upperBound { output.append(runStart..<range.upperBound) }
    }

    /// Hugging Face's `find_matches`: the whole range as consecutive (range, is a match) events.
    static func events(_ pattern: SplitPattern, _ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>,
                       invert: Bool) -> [(Range<Int>, Bool)] {
        var events: [(Range<Int>, Bool)] = []
        var previous = range.lowerBound
        func add(_ start: Int, _ end: Int) {
            if previous < start { events.append((previous..<start, invert)) }
            events.append((start..<end, !invert))
            previous = end
        }
        switch pattern {
        case let .scanner(scanner):
            scanner.forEachMatch(bytes, range, add)
        case let .literal(needle):
            if !needle.isEmpty {
                var i = range.lowerBound
                while i + needle.count <= range.upperBound {
                    if bytes[i] == needle[0] && needle.indices.allSatisfy({ bytes[i + $0] == needle[$0] }) {
                        add(i, i + needle.count); i += needle.count
                    } else {
                        i += 1
                    }
                }
            }
        }
        if previous < range.upperBound { events.append((previous..<range.upperBound, invert)) }
        return events
    }

    /// Hugging Face's `SplitDelimiterBehavior`, applied to the events of one piece; empty pieces dropped.
    static func apply(_ behavior: SplitBehavior, _ events: [(Range<Int>, Bool)], into output: inout [Range<Int>]) {
        var pieces: [Range<Int>] = []
        switch behavior {
        case .isolated:
            pieces = events.map { $0.0 }
        case .removed:
            pieces = events.filter { !$0.1 }.map { $0.0 }
        case .contiguous:
            var previousMatch = false
            for (range, isMatch) in events {
                if isMatch == previousMatch, let last = pieces.last {
                    pieces[pieces.count - 1] = last.lowerBound..<range.upperBound
                } else {
                    pieces.append(range)
                }
                previousMatch = isMatch
            }
        case .mergedWithPrevious:
            var previousMatch = false
            for (range, isMatch) in events {
                if isMatch && !previousMatch, let last = pieces.last {
                    pieces[pieces.count - 1] = last.lowerBound..<range.upperBound
                } else {
                    pieces.append(range)
                }
                previousMatch = isMatch
            }
        case .mergedWithNext:
            var previousMatch = false
            for (range, isMatch) in events.reversed() {
                if isMatch && !previousMatch, let last = pieces.last {
                    pieces[pieces.count - 1] = range.lowerBound..<last.upperBound
                } else {
                    pieces.append(range)
                }
                previousMatch = isMatch
            }
            pieces.reverse()
        }
        output += pieces.filter { !$0.isEmpty }
    }
}

/// Remembers the ids of words already merged during one `encode` call (text repeats its words).
struct WordCache {
    private var slots: [Int32]
    private var mask: Int
    private var hashes: [UInt64] = []
    private var keyRanges: [Range<Int>] = []
    private var idRanges: [Range<Int>] = []
    private var keyBytes: [UInt8] = []
    private var ids: [Int32] = []
    static let longestCachedWord = 48

    init(expectedBytes: Int) {
        var size = 64
        while size < expectedBytes / 2 && size < (1 << 18) { size <<= 1 }
        slots = [Int32](repeating: -1, count: size)
        mask = size - 1
    }

    mutating func encode(_ word: UnsafeBufferPointer<UInt8>, with encoder: BytePairEncoder, into output: inout [Int32]) {
        if word.count == 1 && encoder.byteIDs[Int(word[0])] >= 0 { output.append(encoder.byteIDs[Int(word[0])]); return }
        if word.count > Self.longestCachedWord { encoder.encode(word, into: &output); return }
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in word { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        var slot = Int(truncatingIfNeeded: hash ^ (hash >> 29)) & mask
        while true {
            let entry = slots[slot]
            if entry < 0 { break }
            let e = Int(entry)
            if hashes[e] == hash && keyRanges[e].count == word.count
                && keyBytes[keyRanges[e]].elementsEqual(word) {
                output += ids[idRanges[e]]
                return
            }
            slot = (slot + 1) & mask
        }
        let start = output.count
        encoder.encode(word, into: &output)
        if hashes.count * 2 >= slots.count { return }   // full: stop remembering
        slots[slot] = Int32(hashes.count)
        hashes.append(hash)
        keyRanges.append(keyBytes.count..<(keyBytes.count + word.count))
        keyBytes += word
        idRanges.append(ids.count..<(ids.count + output.count - start))
        ids += output[start...]
    }
}
