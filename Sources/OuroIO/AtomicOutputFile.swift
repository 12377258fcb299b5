#if canImport(Glibc)
import Glibc
private let systemWrite = Glibc.write
#elseif canImport(Darwin)
import Darwin
private let systemWrite = Darwin.write
#endif

/// Writes a file so that the destination either holds the complete result or is left untouched.
///
/// Bytes go to a temporary file beside the destination (`.NAME.ouro-tmp.PID.RANDOM`), which is
/// fsynced and renamed over the destination by `commit()`. `abort()` (and deinit without commit)
/// removes it; so does SIGINT/SIGTERM while it is open (see `OutputCleanup`). Temporaries left by a
/// killed process are removed by the next writer to the same folder.
public final class AtomicOutputFile {
    public let destination: String
    public let temporaryPath: String
    private var fd: Int32
    private var buffer: [UInt8] = []
    private let bufferLimit = 4 << 20
    public private(set) var bytesWritten = 0
    private var finished = false

    public init(destination: String) throws {
        self.destination = destination
        let (folder, name) = Self.split(destination)
        Self.removeStaleTemporaries(folder: folder, name: name)
        temporaryPath = "\(folder)/.\(name).ouro-tmp.\(getpid()).\(UInt32.random(in: 0...UInt32.max))"
        OutputCleanup.installHandlers()
        fd = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileIOError.cannotCreate(path: destination, errno: errno) }
        OutputCleanup.register(temporaryPath)
        buffer.reserveCapacity(bufferLimit)
    }

    deinit {
        if !finished { abort() }
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        if buffer.count + bytes.count > bufferLimit { try flush() }
        if bytes.count >= bufferLimit {
            try writeFully(bytes)
        } else {
            buffer.append(contentsOf: bytes)
        }
        bytesWritten += bytes.count
    }

    public func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { (raw) throws in try write(raw) }
    }

    public func writeZeros(_ count: Int) throws {
        guard count > 0 else { return }
        try write([UInt8](repeating: 0, count: count))
    }

    /// Replaces bytes already written at `offset` (e.g. checksums known only after the data).
    public func overwrite(at offset: Int, _ bytes: [UInt8]) throws {
        precondition(offset >= 0 && offset + bytes.count <= bytesWritten, "overwrite outside the written range")
        try flush()
        let n = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
        guard n == bytes.count else { throw FileIOError.writeFailed(path: destination, errno: n < 0 ? errno : ENOSPC) }
    }

    /// Flushes, fsyncs and renames the temporary file over the destination.
    public func commit() throws {
        do {
            try flush()
            guard fsync(fd) == 0 else { throw FileIOError.commitFailed(path: destination, errno: errno) }
            guard close(fd) == 0 else { fd = -1; throw FileIOError.commitFailed(path: destination, errno: errno) }
            fd = -1
            if OutputCleanup.interruptRequested { throw FileIOError.interrupted(path: destination) }
            guard rename(temporaryPath, destination) == 0 else {
                throw FileIOError.commitFailed(path: destination, errno: errno)
            }
        } catch {
            abort()
            throw error
        }
        finished = true
        OutputCleanup.unregister(temporaryPath)
        // Make the rename itself durable.
        let (folder, _) = Self.split(destination)
        let dirfd = open(folder, O_RDONLY | O_CLOEXEC)
        if dirfd >= 0 { _ = fsync(dirfd); close(dirfd) }
    }

    /// Removes the temporary file; the destination is untouched.
    public func abort() {
        guard !finished else { return }
        finished = true
        if fd >= 0 { close(fd); fd = -1 }
        unlink(temporaryPath)
        OutputCleanup.unregister(temporaryPath)
    }

    private func flush() throws {
        guard !buffer.isEmpty else { return }
        try buffer.withUnsafeBytes { (raw) throws in try writeFully(raw) }
        buffer.removeAll(keepingCapacity: true)
    }

    private func writeFully(_ bytes: UnsafeRawBufferPointer) throws {
        if OutputCleanup.interruptRequested { throw FileIOError.interrupted(path: destination) }
        var done = 0
        while done < bytes.count {
            let n = systemWrite(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                throw FileIOError.writeFailed(path: destination, errno: errno)
            }
            if n == 0 { throw FileIOError.writeFailed(path: destination, errno: ENOSPC) }
            done += n
        }
    }

    static func split(_ path: String) -> (folder: String, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return (".", path) }
        let folder = String(path[..<slash])
        return (folder.isEmpty ? "/" : folder, String(path[path.index(after: slash)...]))
    }

    /// Removes `.NAME.ouro-tmp.PID.*` files whose writing process no longer exists.
    static func removeStaleTemporaries(folder: String, name: String) {
        guard let dir = opendir(folder) else { return }
        defer { closedir(dir) }
        let prefix = ".\(name).ouro-tmp."
        while let entry = readdir(dir) {
            let entryName = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(cString: raw.bindMemory(to: CChar.self).baseAddress!)
            }
            guard entryName.hasPrefix(prefix) else { continue }
            let rest = entryName.dropFirst(prefix.count)
            guard let pidText = rest.split(separator: ".").first, let pid = pid_t(pidText) else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH {
                unlink("\(folder)/\(entryName)")
            }
        }
    }
}
