/// Keys and values of every position processed so far, one slot per (loop step, layer): the same
/// layer sees a different input at each loop step, so each step keeps its own K and V
/// (upstream UniversalTransformerCache index = step * layers + layer).
final class KVCache: @unchecked Sendable {
    let slots: Int
    let capacity: Int
    /// Floats per position in one slot: kvHeads * headDim.
    let width: Int
    /// Positions stored (the same in every slot between forward calls).
    private(set) var length = 0
    private let keys: FloatBuffer
    private let values: FloatBuffer

    /// Throws when the cache would not fit in memory arithmetic (sizes come from the request).
    init(config: OuroConfiguration, capacity: Int) throws {
        slots = config.loopCount * config.layerCount
        self.capacity = capacity
        width = config.kvHeadCount * config.headDim
        guard let total = OuroConfiguration.checkedProduct([slots, capacity, width, MemoryLayout<Float>.stride]) else {
            throw ModelError.invalidRequest("a KV cache for \(capacity) positions is too large")
        }
        keys = FloatBuffer(total / MemoryLayout<Float>.stride)
        values = FloatBuffer(total / MemoryLayout<Float>.stride)
    }

    /// Start of position `position` of slot `slot` (keys).
    @inline(__always)
    func key(_ slot: Int, _ position: Int) -> UnsafeMutablePointer<Float> {
        keys.pointer + (slot * capacity + position) * width
    }

    @inline(__always)
    func value(_ slot: Int, _ position: Int) -> UnsafeMutablePointer<Float> {
        values.pointer + (slot * capacity + position) * width
    }

    /// Called once every slot holds the new positions.
    func advance(by count: Int) {
        length += count
    }

    func reset() { length = 0 }

    /// Forgets every position from `count` on (a rollback: nothing is moved or freed).
    func truncate(to count: Int) {
        precondition(count >= 0 && count <= length)
        length = count
    }
}
