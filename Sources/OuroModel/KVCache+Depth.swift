extension KVCache {
    /// Early exit under full K/V sharing: a position that stopped looping at `fromStep` has no K/V in
    /// the deeper steps' slots; it gets copies of its exit step's K/V there, layer by layer (state
    /// propagation: deeper steps of later tokens see this position as it was when it exited).
    /// Slot index = step * layers + layer, as the cache lays them out.
    func copyForward(positions: Range<Int>, fromStep: Int, steps: Int, layers: Int) {
        guard !positions.isEmpty else { return }
        precondition(fromStep >= 0 && steps * layers == slots && positions.upperBound <= capacity)
        let count = positions.count * width
        for layer in 0..<layers {
            let source = fromStep * layers + layer
            for step in fromStep + 1 ..< steps {
                let slot = step * layers + layer
                key(slot, positions.lowerBound).update(from: key(source, positions.lowerBound), count: count)
                value(slot, positions.lowerBound).update(from: value(source, positions.lowerBound), count: count)
            }
        }
    }
}
