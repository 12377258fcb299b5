#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Removes open temporary outputs when the process is stopped by SIGINT or SIGTERM.
///
/// The handler may only call async-signal-safe functions, so the paths are kept as C strings in a
/// fixed table that the handler walks with `unlink`, then it re-raises the signal with the default
/// action. SIGXFSZ is ignored so that a file size limit makes `write` fail with EFBIG (a clear error)
/// instead of killing the process.
public enum OutputCleanup {
    private static let capacity = 64
    nonisolated(unsafe) private static let table: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> = {
        let t = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: 64)
        t.initialize(repeating: nil, count: 64)
        return t
    }()
    /// Initialized once with pthread_mutex_init (thread-safe lazy static): a zeroed pthread_mutex_t
    /// is a valid mutex on Glibc but not on Darwin.
    nonisolated(unsafe) private static let lock: UnsafeMutablePointer<pthread_mutex_t> = {
        let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        return mutex
    }()
    nonisolated(unsafe) private static var installed = false
    nonisolated(unsafe) public private(set) static var interruptRequested = false

    public static func installHandlers() {
        pthread_mutex_lock(lock); defer { pthread_mutex_unlock(lock) }
        guard !installed else { return }
        installed = true
        signal(SIGXFSZ, SIG_IGN)
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal(sig) { received in
                OutputCleanup.removeAllFromSignalHandler()
                signal(received, SIG_DFL)
                raise(received)
            }
        }
    }

    static func register(_ path: String) {
        pthread_mutex_lock(lock); defer { pthread_mutex_unlock(lock) }
        for i in 0..<capacity where table[i] == nil {
            table[i] = strdup(path)
            return
        }
    }

    static func unregister(_ path: String) {
        pthread_mutex_lock(lock); defer { pthread_mutex_unlock(lock) }
        for i in 0..<capacity {
            if let p = table[i], String(cString: p) == path {
                table[i] = nil
                free(p)
            }
        }
    }

    private static func removeAllFromSignalHandler() {
        interruptRequested = true
        for i in 0..<capacity {
            if let p = table[i] { unlink(p) }
        }
    }
}
