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
    /// Bytes to unmap from `bytes.baseAddress` (the huge-page copy rounds its length up).
    private var mappedLength: Int

    /// Where the bytes of a file opened for reading live.
    public enum Residency: Sendable {
        /// A mapping of the file: the page cache's own pages, shared with other processes. Their
        /// size is whatever the kernel read the file in: 4 KiB pages if it was evicted and read back
        /// piecemeal, and then a pass over the whole file takes a TLB miss every 4 KiB and loses the
        /// hardware prefetcher at each page edge (measured: a Q4_0 decode kernel over such a file
        /// ran 1.25-1.35x slower than over a fresh copy of the same bytes).
        case mapped
        /// A private copy read into anonymous memory advised for 2 MiB transparent huge pages
        /// (Linux; elsewhere `mapped`): as fast whatever state the page cache is in, at the cost of
        /// a read of the file at open and memory that is not shared with other processes.
        case hugePages
    }

    public convenience init(path: String) throws {
        try self.init(path: path, residency: .mapped)
    }

    public init(path: String, residency: Residency) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileIOError.cannotOpen(path: path, errno: errno) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw FileIOError.cannotOpen(path: path, errno: errno) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw FileIOError.notRegularFile(path: path) }
        let size = Int(info.st_size)
        mappedLength = size
        if size == 0 {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        #if os(Linux)
        if residency == .hugePages {
            let (base, length) = try Self.readIntoHugePages(fd: fd, size: size, path: path)
            bytes = UnsafeRawBufferPointer(start: base, count: size)
            mappedLength = length
            return
        }
        #endif
        let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let base, base != MAP_FAILED else { throw FileIOError.cannotMap(path: path, errno: errno) }
        bytes = UnsafeRawBufferPointer(start: base, count: size)
    }

    #if os(Linux)
    /// Reads the file into a 2 MiB-aligned anonymous mapping advised MADV_HUGEPAGE (so each 2 MiB
    /// takes one huge page when the kernel has one), then makes it read-only. Returns the base and
    /// the length to unmap.
    private static func readIntoHugePages(fd: Int32, size: Int, path: String) throws -> (UnsafeMutableRawPointer, Int) {
        let length = HugePages.roundedUp(size)
        guard let base = HugePages.allocate(size) else { throw FileIOError.cannotMap(path: path, errno: errno) }
        var done = 0
        while done < size {
            let n = pread(fd, base + done, min(size - done, 64 << 20), off_t(done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                let code = n < 0 ? errno : EIO      // 0: the file shrank under us
                munmap(base, length)
                throw FileIOError.cannotRead(path: path, errno: code)
            }
            done += n
        }
        _ = mprotect(base, length, PROT_READ)
        return (base, length)
    }
    #endif

    /// A read-only anonymous mapping holding a copy of `source`, for bytes produced in memory
    /// (tests, fuzzing, decompressed data) that readers built on `MappedFile` should accept too.
    /// `path` only names the data in errors.
    public init(path: String, copying source: UnsafeRawBufferPointer) throws {
        self.path = path
        mappedLength = source.count
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
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), mappedLength) }
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
