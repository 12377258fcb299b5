/// A fixed-size, 64-byte aligned float buffer for activations: allocated once, reused for every
/// token, freed with its owner. Avoids copy-on-write checks in the hot loops.
final class FloatBuffer: @unchecked Sendable {
    let count: Int
    let pointer: UnsafeMutablePointer<Float>

    init(_ count: Int) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride, alignment: 64)
        pointer = raw.initializeMemory(as: Float.self, repeating: 0, count: max(count, 1))
    }

    deinit { pointer.deallocate() }

    subscript(_ index: Int) -> Float {
        get { pointer[index] }
        set { pointer[index] = newValue }
    }

    func array(from start: Int = 0, count n: Int) -> [Float] {
        Array(UnsafeBufferPointer(start: pointer + start, count: n))
    }
}
