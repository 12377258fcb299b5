#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Failures of the operating system's file calls. Each case names the path; `description` is one line.
public enum FileIOError: Error, Equatable, CustomStringConvertible {
    /// `open` or `stat` failed.
    case cannotOpen(path: String, errno: Int32)
    /// The path is a directory, device or other non-regular file.
    case notRegularFile(path: String)
    /// `mmap` failed.
    case cannotMap(path: String, errno: Int32)
    /// `read` failed (or the file ended early) while copying it into memory.
    case cannotRead(path: String, errno: Int32)
    /// The temporary output file beside the destination could not be created.
    case cannotCreate(path: String, errno: Int32)
    /// `write` failed (ENOSPC: disk full; EFBIG: file size limit).
    case writeFailed(path: String, errno: Int32)
    /// `fsync` or `rename` failed while committing the output.
    case commitFailed(path: String, errno: Int32)
    /// The work was interrupted by a signal; nothing was left at the destination.
    case interrupted(path: String)

    public var description: String {
        switch self {
        case let .cannotOpen(path, code): return "\(path): cannot open: \(Self.message(code))"
        case let .notRegularFile(path): return "\(path): not a regular file"
        case let .cannotMap(path, code): return "\(path): cannot memory-map: \(Self.message(code))"
        case let .cannotRead(path, code): return "\(path): cannot read: \(Self.message(code))"
        case let .cannotCreate(path, code): return "\(path): cannot create output: \(Self.message(code))"
        case let .writeFailed(path, code):
            let hint = (code == ENOSPC || code == EDQUOT) ? " (disk full?)" : code == EFBIG ? " (file size limit reached)" : ""
            return "\(path): write failed: \(Self.message(code))\(hint); nothing was written there"
        case let .commitFailed(path, code): return "\(path): cannot finish writing: \(Self.message(code)); nothing was written there"
        case let .interrupted(path): return "\(path): interrupted; nothing was written there"
        }
    }

    static func message(_ code: Int32) -> String { String(cString: strerror(code)) }
}
