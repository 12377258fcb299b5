#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Anonymous memory that starts on a 2 MiB boundary and is advised `MADV_HUGEPAGE` (Linux), so each
/// whole 2 MiB of it takes one transparent huge page when the kernel has one (this machine's THP
/// mode is `madvise`: nothing gets huge pages unless asked). Data streamed over and over (the
/// file's weights, the packed weight copies, the KV cache's chunks) then costs a TLB miss per 2 MiB
/// instead of per 4 KiB, and the hardware prefetchers do not stop at every 4 KiB page edge.
/// Elsewhere the same calls give plain anonymous memory.
public enum HugePages {
    /// Bytes of one huge page.
    public static let pageBytes = 2 << 20

    /// `bytes` rounded up to whole huge pages: what `allocate` maps and `deallocate` unmaps.
    public static func roundedUp(_ bytes: Int) -> Int { (bytes + pageBytes - 1) / pageBytes * pageBytes }

    /// A read-write, zero-filled mapping of `roundedUp(bytes)` starting on a 2 MiB boundary; nil when
    /// the system has no room for it. Pages are faulted in on first touch (or by `populate`).
    /// Release it with `deallocate(_:bytes:)` and the same `bytes`.
    public static func allocate(_ bytes: Int) -> UnsafeMutableRawPointer? {
        guard bytes > 0 else { return nil }
        let length = roundedUp(bytes)
        // Over-map by one huge page and trim both ends, so what is kept starts on a 2 MiB boundary.
        guard let raw = mmap(nil, length + pageBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0),
              raw != MAP_FAILED else { return nil }
        let start = Int(bitPattern: raw)
        let aligned = (start + pageBytes - 1) / pageBytes * pageBytes
        if aligned > start { munmap(raw, aligned - start) }
        let tail = start + length + pageBytes - (aligned + length)
        if tail > 0 { munmap(UnsafeMutableRawPointer(bitPattern: aligned + length), tail) }
        let base = UnsafeMutableRawPointer(bitPattern: aligned)!
        #if os(Linux)
        _ = madvise(base, length, MADV_HUGEPAGE)
        #endif
        return base
    }

    /// Unmaps what `allocate(bytes)` returned.
    public static func deallocate(_ base: UnsafeMutableRawPointer, bytes: Int) {
        munmap(base, roundedUp(bytes))
    }

    /// Faults in `count` bytes at `start` (inside one allocation) now, keeping their contents, so the
    /// page faults (a huge page's zeroing, and the kernel's compaction to find one) are paid where
    /// the caller chooses, not at the first touch. `MADV_POPULATE_WRITE` (Linux 5.14+); where that
    /// is missing, nothing happens and the pages fault on first touch as before. False then.
    @discardableResult
    public static func populate(_ start: UnsafeMutableRawPointer, count: Int) -> Bool {
        guard count > 0 else { return true }
        #if os(Linux)
        let populateWrite: Int32 = 23   // MADV_POPULATE_WRITE; older C headers do not name it
        let page = 4096, first = Int(bitPattern: start) / page * page
        return madvise(UnsafeMutableRawPointer(bitPattern: first), Int(bitPattern: start) + count - first, populateWrite) == 0
        #else
        return false
        #endif
    }
}
