// Compiled into every fuzz executable together with one harness file (see Scripts/fuzz.sh).
// Each harness defines `fuzzOne(_:)`; a crash, a trap, an ASan report, or a `reject` below is a finding.
#if canImport(Glibc)
import Glibc
#endif

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = size == 0 || data == nil ? [] : Array(UnsafeBufferPointer(start: data, count: size))
    fuzzOne(bytes)
    return 0
}

/// The readers' error contract: a rejection is one non-empty line naming the input.
func checkRejection(_ error: Error, naming name: String) {
    let text = String(describing: error)
    if verbose { fputs("rejected: \(text)\n", stderr) }
    if text.isEmpty || text.contains(where: { $0 == "\n" || $0 == "\r" || $0 == "\u{2028}" || $0 == "\u{2029}" }) {
        reject("error description is not one line: \(text.debugDescription)")
    }
    if !text.contains(name) {
        reject("error description does not name the input \(name): \(text.debugDescription)")
    }
}

/// FUZZ_VERBOSE=1 prints every rejection (to check that seeds get past the first checks).
private let verbose = getenv("FUZZ_VERBOSE") != nil

/// A contract violation that is not a crash by itself: report and abort so libFuzzer keeps the input.
func reject(_ message: String) -> Never {
    fputs("FUZZ CONTRACT VIOLATION: \(message)\n", stderr)
    abort()
}

/// Reads every byte so ASan sees any view that points outside its storage.
@inline(never)
func touch(_ raw: UnsafeRawBufferPointer) -> UInt8 {
    var x: UInt8 = 0
    for b in raw { x ^= b }
    return x
}

/// A file in tmpfs for readers that only take paths; one per process, rewritten per input.
func scratchFile(_ bytes: [UInt8], suffix: String) -> String {
    let path = "/dev/shm/ourokit-fuzz-\(getpid())\(suffix)"
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard fd >= 0 else { reject("cannot write \(path)") }
    defer { close(fd) }
    var written = 0
    while written < bytes.count {
        let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, bytes.count - written) }
        guard n > 0 else { reject("cannot write \(path)") }
        written += n
    }
    return path
}
