import CKernels
import COpenBLAS
import Dispatch
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Baselines measured on this machine in the same run as a benchmark, so results can be stated
/// as ratios: read bandwidth for decode, sgemm throughput for prefill.
public enum MachineProbe {
    /// The process's peak resident memory so far, in bytes (getrusage ru_maxrss: KiB on Linux, bytes on macOS).
    public static func peakResidentBytes() -> Int {
        var usage = rusage()
        #if canImport(Darwin)
        guard getrusage(RUSAGE_SELF, &usage) == 0 else { return 0 }
        return Int(usage.ru_maxrss)
        #else
        guard getrusage(RUSAGE_SELF.rawValue, &usage) == 0 else { return 0 }
        return Int(usage.ru_maxrss) * 1024
        #endif
    }

    /// Bytes per second reading `regions` (best of `passes` full passes) with `threads` threads,
    /// each taking whole 4 MiB chunks in turn. Run it on resident memory (e.g. after a warm-up).
    public static func readBandwidth(_ regions: [UnsafeRawBufferPointer], threads: Int, passes: Int = 3) -> Double {
        let chunk = 4 << 20
        var pieces: [UnsafeRawBufferPointer] = []
        for region in regions where region.count > 0 {
            var start = 0
            while start < region.count {
                let end = min(start + chunk, region.count)
                pieces.append(UnsafeRawBufferPointer(rebasing: region[start..<end]))
                start = end
            }
        }
        let total = pieces.reduce(0) { $0 + $1.count }
        guard total > 0 else { return 0 }
        var best = Double.infinity
        var sink: UInt64 = 0
        final class Job: @unchecked Sendable {
            let pieces: [UnsafeRawBufferPointer]
            var results: [UInt64]
            init(_ pieces: [UnsafeRawBufferPointer]) { self.pieces = pieces; results = Array(repeating: 0, count: pieces.count) }
        }
        let job = Job(pieces)
        for _ in 0..<max(1, passes) {
            let started = DispatchTime.now().uptimeNanoseconds
            withExtendedLifetime(job) {
                ck_parallel_for(Int32(pieces.count), Int32(threads), { context, index in
                    let job = Unmanaged<Job>.fromOpaque(context!).takeUnretainedValue()
                    let piece = job.pieces[Int(index)]
                    job.results[Int(index)] = ck_read_bytes(piece.baseAddress!, piece.count)
                }, Unmanaged.passUnretained(job).toOpaque())
            }
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
            sink ^= job.results.reduce(0, ^)
        }
        if sink == 0x5eed { print("", terminator: "") }     // keeps the reads observable
        return Double(total) / best
    }

    /// sgemm GFLOP/s for C[m,n] = A[m,k] · B[n,k]ᵀ (the prefill shape: tokens x weights), best of
    /// `repeats`, with OpenBLAS set to `threads` threads.
    public static func sgemmGFLOPS(m: Int, n: Int, k: Int, threads: Int, repeats: Int = 5) -> Double {
        setBLASThreads(threads)
        let a = FloatBuffer(m * k), b = FloatBuffer(n * k), c = FloatBuffer(m * n)
        for i in 0..<m * k { a[i] = Float(i % 7) * 0.01 }
        for i in 0..<n * k { b[i] = Float(i % 5) * 0.01 }
        var best = Double.infinity
        for _ in 0..<max(1, repeats) {
            let started = DispatchTime.now().uptimeNanoseconds
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k),
                        1, a.pointer, Int32(k), b.pointer, Int32(k), 0, c.pointer, Int32(n))
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9)
        }
        return 2 * Double(m) * Double(n) * Double(k) / best / 1e9
    }

    /// OpenBLAS's own thread count (attention and the float paths use it).
    public static func setBLASThreads(_ threads: Int) {
        openblas_set_num_threads(Int32(max(1, threads)))
    }

    /// The integer-kernel level in use: "avx512vnni-gemm", "avx512vnni", "avx2" or "c".
    public static var kernelLevel: String {
        switch Int(ck_level()) {
        case Int(CK_LEVEL_AVX512VNNI_GEMM): return "avx512vnni-gemm"
        case Int(CK_LEVEL_AVX512VNNI): return "avx512vnni"
        case Int(CK_LEVEL_AVX2): return "avx2"
        default: return "c"
        }
    }

    /// Forces a lower kernel level ("c", "avx2", "vnni": VNNI without the prefill GEMM); returns the
    /// level now in use.
    @discardableResult
    public static func setKernelLevel(_ name: String) -> String {
        switch name {
        case "c", "scalar": ck_set_level(Int32(CK_LEVEL_SCALAR))
        case "avx2": ck_set_level(Int32(CK_LEVEL_AVX2))
        case "vnni": ck_set_level(Int32(CK_LEVEL_AVX512VNNI))
        default: ck_set_level(ck_best_level())
        }
        return kernelLevel
    }
}
