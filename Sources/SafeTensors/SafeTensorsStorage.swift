import OuroIO

/// The bytes behind a `SafeTensorsFile`: a read-only memory map, or an owned copy of bytes that were
/// produced in memory (a decompressed reference bundle). Either way the address stays fixed for the
/// storage's lifetime, so tensor views can point into it.
final class SafeTensorsStorage: @unchecked Sendable {
    let bytes: UnsafeRawBufferPointer
    let mapped: MappedFile?
    private let owned: UnsafeMutableRawBufferPointer?

    init(mapped: MappedFile) {
        self.mapped = mapped
        self.owned = nil
        self.bytes = mapped.bytes
    }

    init(copying source: [UInt8]) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(source.count, 1), alignment: 64)
        source.withUnsafeBytes { raw in
            if let base = raw.baseAddress { buffer.baseAddress!.copyMemory(from: base, byteCount: raw.count) }
        }
        self.mapped = nil
        self.owned = buffer
        self.bytes = UnsafeRawBufferPointer(start: buffer.baseAddress, count: source.count)
    }

    deinit { owned?.deallocate() }
}
