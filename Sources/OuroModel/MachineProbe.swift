import CKernels
import COpenBLAS
import Dispatch
import Foundation
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

    /// The integer-kernel level in use: "avx512", "vnni" (AVX-512 VNNI without the prefill GEMM),
    /// "avx2" or "scalar" on x86-64; "i8mm", "dotprod", "neon" or "scalar" on aarch64.
    public static var kernelLevel: String { String(cString: ck_level_name(ck_level())) }

    /// The levels this CPU can run, lowest first.
    public static var availableKernelLevels: [String] {
        (0...Int(ck_best_level())).map { String(cString: ck_level_name(Int32($0))) }
    }

    /// Forces a kernel level by name (a kernelLevel name, "c" for "scalar", or "best"); a level this
    /// CPU lacks gives its best one. Returns the level now in use.
    @discardableResult
    public static func setKernelLevel(_ name: String) -> String {
        let level = name == "best" ? -1 : ck_level_named(name)
        ck_set_level(level < 0 ? ck_best_level() : level)
        return kernelLevel
    }

    /// Why the OURO_KERNELS environment variable cannot be honoured (an unknown name, or a level this
    /// CPU lacks), or nil when it is unset or names an available level (which the kernels then start at).
    public static func kernelEnvironmentProblem(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        guard let name = environment["OURO_KERNELS"], !name.isEmpty else { return nil }
        let level = ck_level_named(name)
        if level < 0 {
            #if arch(arm64)
            let known = "scalar, neon, dotprod or i8mm on this aarch64 build"
            #else
            let known = "scalar, avx2, vnni or avx512 on this x86-64 build"
            #endif
            return "OURO_KERNELS=\(name): unknown kernel level (\(known))"
        }
        if level > ck_best_level() {
            return "OURO_KERNELS=\(name): this CPU lacks that kernel level (available: \(availableKernelLevels.joined(separator: ", ")))"
        }
        return nil
    }
}
