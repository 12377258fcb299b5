extension KVCache {
    /// The stored bytes of one position's keys (`kv` 0) or values (1) in `slot`, every head in order.
    func storedRow(_ slot: Int, _ kv: Int, _ position: Int) -> [UInt8] {
        precondition(position < capacity)
        return (0..<kvHeads).flatMap { head in
            Array(UnsafeRawBufferPointer(start: row(slot, kv, head, position), count: rowBytes))
        }
    }

    /// Every kept slot's K and V bytes for the positions held: two caches with equal bytes answer
    /// every later token identically (rollback tests compare caches with it).
    func storedBytes() -> [UInt8] {
        (0..<keptSlots).flatMap { slot in
            (0..<2).flatMap { kv in (0..<length).flatMap { storedRow(slot, kv, $0) } }
        }
    }

    /// An independent cache with the same options holding the same positions.
    func snapshot(config: OuroConfiguration) throws -> KVCache {
        let copy = try KVCache(config: config, options: options)
        try copy.reserve(max(length, 1))
        for slot in 0..<keptSlots {
            for kv in 0..<2 {
                for head in 0..<kvHeads {
                    for position in 0..<length {
                        copy.row(slot, kv, head, position).copyMemory(from: row(slot, kv, head, position), byteCount: rowBytes)
                    }
                }
            }
        }
        copy.advance(by: length)
        return copy
    }
}
