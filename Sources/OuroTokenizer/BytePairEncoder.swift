/// Byte-level BPE over ids: a word starts as one id per byte (GPT-2's byte-to-character table picks
/// the vocabulary entry) and the merge of lowest rank, leftmost first, is applied until none applies,
/// which is the order Hugging Face's BPE model merges in.
struct BytePairEncoder {
    /// The vocabulary id of each byte's character; -1 when the vocabulary lacks it.
    let byteIDs: [Int32]
    /// (left id, right id) → (rank, merged id).
    let merges: PairTable
    /// Raw bytes of whole vocabulary entries → id, for `ignore_merges`.
    let wholeWords: [[UInt8]: Int32]?
    /// Stands for a byte the vocabulary lacks (nil: such bytes are dropped).
    let unknownID: Int32?
    let fuseUnknown: Bool

    /// Appends the ids of one pre-tokenized word (raw bytes).
    func encode(_ word: UnsafeBufferPointer<UInt8>, into output: inout [Int32]) {
        if word.count == 1 && byteIDs[Int(word[0])] >= 0 { output.append(byteIDs[Int(word[0])]); return }
        if let wholeWords, let id = wholeWords[Array(word)] { output.append(id); return }
        withUnsafeTemporaryAllocation(of: Int32.self, capacity: word.count) { buffer in
            let count = initialSymbols(word, buffer)
            if count <= 64 {
                mergeShort(buffer, count: count, into: &output)
            } else {
                mergeLong(Array(buffer[..<count]), into: &output)
            }
        }
    }

    /// One symbol per byte, as Hugging Face's `merge_word` builds them: a byte without a vocabulary
    /// character becomes the unknown token (one per run when fused) or nothing.
    private func initialSymbols(_ word: UnsafeBufferPointer<UInt8>, _ symbols: UnsafeMutableBufferPointer<Int32>) -> Int {
        var count = 0
        var lastWasUnknown = false
        for byte in word {
            let id = byteIDs[Int(byte)]
            if id >= 0 {
                symbols[count] = id; count += 1; lastWasUnknown = false
            } else if let unknownID {
                if !(fuseUnknown && lastWasUnknown) { symbols[count] = unknownID; count += 1 }
                lastWasUnknown = true
            }
        }
        return count
    }

    /// Short words: rescan the pairs after every merge (fewer than 64 symbols, cheaper than a heap).
    private func mergeShort(_ symbols: UnsafeMutableBufferPointer<Int32>, count initialCount: Int, into output: inout [Int32]) {
        do {
            var count = initialCount
            while count > 1 {
                var bestRank = Int32.max, bestPosition = -1, bestID: Int32 = 0
                for i in 0..<(count - 1) {
                    if let (rank, id) = merges.lookup(symbols[i], symbols[i + 1]), rank < bestRank {
                        bestRank = rank; bestPosition = i; bestID = id
                    }
                }
                if bestPosition < 0 { break }
                symbols[bestPosition] = bestID
                for i in (bestPosition + 1)..<(count - 1) { symbols[i] = symbols[i + 1] }
                count -= 1
            }
            for i in 0..<count { output.append(symbols[i]) }
        }
    }

    /// Long words (runs of spaces, long identifiers): a min-heap of candidate merges over a linked list,
    /// O(n log n) instead of O(n²).
    private func mergeLong(_ symbols: [Int32], into output: inout [Int32]) {
        let n = symbols.count
        var ids = symbols
        var next = Array(1...n), previous = Array(-1..<(n - 1))
        var alive = [Bool](repeating: true, count: n)
        // Heap entries: (rank, position of the left symbol, left id, right id) — stale entries are
        // skipped when the symbols at that position changed.
        var heap = MergeHeap()
        func push(_ left: Int) {
            let right = next[left]
            guard right < n, let (rank, _) = merges.lookup(ids[left], ids[right]) else { return }
            heap.push(MergeCandidate(rank: rank, position: left, left: ids[left], right: ids[right]))
        }
        for i in 0..<(n - 1) { push(i) }
        while let candidate = heap.pop() {
            let left = candidate.position
            guard alive[left], ids[left] == candidate.left else { continue }
            let right = next[left]
            guard right < n, ids[right] == candidate.right,
                  let (_, merged) = merges.lookup(candidate.left, candidate.right) else { continue }
            ids[left] = merged
            alive[right] = false
            next[left] = next[right]
            if next[right] < n { previous[next[right]] = left }
            if previous[left] >= 0 { push(previous[left]) }
            push(left)
        }
        var i = 0
        while i < n { output.append(ids[i]); i = next[i] }
    }
}

struct MergeCandidate {
    let rank: Int32
    let position: Int
    let left: Int32
    let right: Int32

    /// Lowest rank first, then leftmost.
    @inline(__always)
    func precedes(_ other: MergeCandidate) -> Bool {
        rank != other.rank ? rank < other.rank : position < other.position
    }
}

struct MergeHeap {
    private var items: [MergeCandidate] = []

    mutating func push(_ item: MergeCandidate) {
        items.append(item)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if !items[i].precedes(items[parent]) { break }
            items.swapAt(i, parent); i = parent
        }
    }

    mutating func pop() -> MergeCandidate? {
        guard let top = items.first else { return nil }
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var best = i
                if l < items.count && items[l].precedes(items[best]) { best = l }
                if r < items.count && items[r].precedes(items[best]) { best = r }
                if best == i { break }
                items.swapAt(i, best); i = best
            }
        }
        return top
    }
}

/// Open-addressing hash table from an id pair to (rank, merged id): the BPE inner loop looks a pair up
/// for every adjacent symbol, so it avoids Dictionary's hashing and boxing.
struct PairTable {
    private var keys: [UInt64]
    private var values: [UInt64]   // rank << 32 | merged id
    private let mask: Int
    private static let empty = UInt64.max

    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        keys = [UInt64](repeating: Self.empty, count: size)
        values = [UInt64](repeating: 0, count: size)
        mask = size - 1
    }

    @inline(__always)
    private static func key(_ a: Int32, _ b: Int32) -> UInt64 { UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b)) }

    @inline(__always)
    private func slot(_ key: UInt64) -> Int { Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask }

    /// Inserts, or replaces a repeated pair: Hugging Face collects merges into a map, so the last one
    /// listed wins.
    mutating func insert(_ a: Int32, _ b: Int32, rank: Int32, merged: Int32) {
        let k = Self.key(a, b)
        var i = slot(k)
        while keys[i] != Self.empty && keys[i] != k { i = (i + 1) & mask }
        keys[i] = k
        values[i] = UInt64(UInt32(bitPattern: rank)) << 32 | UInt64(UInt32(bitPattern: merged))
    }

    @inline(__always)
    func lookup(_ a: Int32, _ b: Int32) -> (rank: Int32, merged: Int32)? {
        let k = Self.key(a, b)
        return keys.withUnsafeBufferPointer { keys in
            var i = slot(k)
            while true {
                let stored = keys[i]
                if stored == k {
                    let v = values[i]
                    return (Int32(truncatingIfNeeded: v >> 32), Int32(truncatingIfNeeded: v))
                }
                if stored == Self.empty { return nil }
                i = (i + 1) & mask
            }
        }
    }
}
