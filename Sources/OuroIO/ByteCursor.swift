/// Reads little-endian values from untrusted bytes. Every read is bounds-checked and throws on
/// short input; loads are unaligned-safe. Readers wrap `ByteCursor.OutOfBounds` into their own errors.
public struct ByteCursor {
    public struct OutOfBounds: Error, Equatable {
        public let offset: Int
        public let needed: Int
        public let available: Int
    }

    public let bytes: UnsafeRawBufferPointer
    public private(set) var offset: Int

    public init(_ bytes: UnsafeRawBufferPointer, offset: Int = 0) {
        self.bytes = bytes
        self.offset = offset
    }

    public var remaining: Int { bytes.count - offset }

    private mutating func take(_ n: Int) throws -> Int {
        guard n >= 0, n <= remaining else { throw OutOfBounds(offset: offset, needed: n, available: max(0, remaining)) }
        let start = offset
        offset += n
        return start
    }

    public mutating func read<T: FixedWidthInteger>(_: T.Type = T.self) throws -> T {
        let start = try take(MemoryLayout<T>.size)
        return T(littleEndian: bytes.loadUnaligned(fromByteOffset: start, as: T.self))
    }

    public mutating func readFloat32() throws -> Float {
        Float(bitPattern: try read(UInt32.self))
    }

    public mutating func readFloat64() throws -> Double {
        Double(bitPattern: try read(UInt64.self))
    }

    /// A view of the next `count` bytes (no copy).
    public mutating func readBytes(_ count: Int) throws -> UnsafeRawBufferPointer {
        let start = try take(count)
        return UnsafeRawBufferPointer(rebasing: bytes[start..<start + count])
    }

    public mutating func skip(_ count: Int) throws {
        _ = try take(count)
    }
}

/// Rounds `value` up to a multiple of `alignment` (a power of two). The one padding helper.
@inlinable
public func alignedUp(_ value: Int, to alignment: Int) -> Int {
    (value + alignment - 1) & ~(alignment - 1)
}
