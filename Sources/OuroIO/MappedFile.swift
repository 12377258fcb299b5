#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file mapped read-only into memory. Tensor data is used straight from the mapping,
/// never copied; the mapping lives as long as this object.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    /// The file's bytes; empty for an empty file.
    public let bytes: UnsafeRawBufferPointer
    public var count: Int { bytes.count }

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileIOError.cannotOpen(path: path, errno: errno) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw FileIOError.cannotOpen(path: path, errno: errno) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw FileIOError.notRegularFile(path: path) }
        let size = Int(info.st_size)
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let base, base != MAP_FAILED else { throw FileIOError.cannotMap(path: path, errno: errno) }
        bytes = UnsafeRawBufferPointer(start: base, count: size)
    }

    /// A read-only anonymous mapping holding a copy of `source`, for bytes produced in memory
    /// (tests, fuzzing, decompressed data) that readers built on `MappedFile` should accept too.
    /// `path` only names the data in errors.
    public init(path: String, copying source: UnsafeRawBufferPointer) throws {
        self.path = path
        guard let sourceBase = source.baseAddress, source.count > 0 else {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        let base = mmap(nil, source.count, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let base, base != MAP_FAILED else { throw FileIOError.cannotMap(path: path, errno: errno) }
        base.copyMemory(from: sourceBase, byteCount: source.count)
        _ = mprotect(base, source.count, PROT_READ)
        bytes = UnsafeRawBufferPointer(start: base, count: source.count)
    }

    deinit {
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }

    /// Hint that `range` will be read front to back soon.
    public func adviseSequential(_ range: Range<Int>? = nil) {
        advise(range ?? 0..<count, MADV_SEQUENTIAL)
    }

    /// Drop the pages of `range` from this process (they are re-read from disk if touched again).
    /// Streaming conversion uses this so resident memory stays bounded whatever the file's size.
    public func release(_ range: Range<Int>) {
        advise(range, MADV_DONTNEED)
    }

    private func advise(_ range: Range<Int>, _ advice: Int32) {
        guard let base = bytes.baseAddress, !range.isEmpty else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (range.lowerBound / page) * page          // madvise wants a page-aligned start
        let end = min(count, range.upperBound)
        guard end > start else { return }
        _ = madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, advice)
    }
}
