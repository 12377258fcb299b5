import CKernels
import Foundation
import OuroTestSupport
import Quantization
import XCTest
@testable import OuroModel

/// The integer kernels: every instruction-set level against the plain C level, activation
/// quantization against its definition, and the thread pool.
final class CKernelsTests: XCTestCase {
    private var generator = SplitMix(seed: 11)

    override func tearDown() {
        ck_set_level(ck_best_level())
        super.tearDown()
    }

    private func quantizedRows(_ type: GGMLType, rows: Int, cols: Int) -> [UInt8] {
        let values = (0..<rows * cols).map { _ in generator.nextFloat() }
        return try! quantize(type, values)
    }

    func testEveryKernelLevelAgreesWithPlainCOnRandomInputs() {
        XCTAssertGreaterThanOrEqual(ck_best_level(), Int32(CK_LEVEL_SCALAR))
        for type in [GGMLType.q8_0, .q4_0] {
            for (rows, cols, tokens) in [(37, 96, 1), (19, 32, 5), (64, 640, 4), (33, 5632 / 8, 7), (300, 256, 2), (70, 2048, 1), (24, 224, 1)] {
                let w = quantizedRows(type, rows: rows, cols: cols)
                let x = (0..<tokens * cols).map { _ in generator.nextFloat() * 3 }
                ck_set_level(Int32(CK_LEVEL_SCALAR))
                let reference = ckMatmul(type, w, rows: rows, cols: cols, x, tokens: tokens, threads: 1)
                // Rounding scale of each output: the sum of |w| |x| over its row (terms cancel).
                let dense = w.withUnsafeBytes { try! dequantize(type, $0, count: rows * cols) }
                let magnitude = (0..<tokens).flatMap { t in
                    (0..<rows).map { r in (0..<cols).reduce(Float(0)) { $0 + abs(dense[r * cols + $1] * x[t * cols + $1]) } }
                }
                XCTAssertFalse(reference.contains { $0.isNaN })
                for level in Int32(CK_LEVEL_SCALAR)...ck_best_level() {
                    XCTAssertEqual(ck_set_level(level), level)
                    for threads in [1, 2, 3] {
                        let y = ckMatmul(type, w, rows: rows, cols: cols, x, tokens: tokens, threads: threads)
                        // Integer sums are exact on every path; only the f32 block accumulation differs.
                        for i in y.indices {
                            XCTAssertEqual(y[i], reference[i], accuracy: 1e-6 * magnitude[i],
                                           "\(type) level \(level) threads \(threads) [\(i)] \(rows)x\(cols)x\(tokens)")
                        }
                    }
                }
            }
        }
    }

    /// The one-token Q4_0 kernels (the VNNI level's 512-bit one takes 4 blocks per step and a plain
    /// tail) on raw blocks: every nibble value 0...15 appears, block counts with every remainder mod 4.
    func testQ4DecodeKernelsAgreeWithPlainCOnRawBlocks() {
        for (rows, blocks) in [(3, 1), (5, 4), (7, 5), (11, 6), (13, 7), (9, 8), (65, 64), (6, 176)] {
            let cols = blocks * 32
            var w = [UInt8](repeating: 0, count: rows * blocks * 18)
            for b in 0..<rows * blocks {
                // f16 scale in [2^-8, 2^2): sign and mantissa random, exponent bits 7...16.
                let exponent = UInt16(7 + generator.next() % 10), mantissa = UInt16(generator.next() % 1024)
                let half = (UInt16(generator.next() % 2) << 15) | (exponent << 10) | mantissa
                w[b * 18] = UInt8(half & 0xff)
                w[b * 18 + 1] = UInt8(half >> 8)
                for j in 2..<18 { w[b * 18 + j] = UInt8(truncatingIfNeeded: generator.next()) }
            }
            let x = (0..<cols).map { _ in generator.nextFloat() * 4 }
            ck_set_level(Int32(CK_LEVEL_SCALAR))
            let reference = ckMatmul(.q4_0, w, rows: rows, cols: cols, x, tokens: 1, threads: 1)
            let dense = w.withUnsafeBytes { try! dequantize(.q4_0, $0, count: rows * cols) }
            for level in Int32(CK_LEVEL_SCALAR)...ck_best_level() {
                ck_set_level(level)
                let y = ckMatmul(.q4_0, w, rows: rows, cols: cols, x, tokens: 1, threads: 1)
                for r in 0..<rows {
                    let magnitude = (0..<cols).reduce(Float(0)) { $0 + abs(dense[r * cols + $1] * x[$1]) }
                    // The fast kernel subtracts the -8 offset as 8 * sum(scale * block sum) at the end:
                    // allow the rounding of terms up to 8 |x| times the largest scale per element.
                    XCTAssertEqual(y[r], reference[r], accuracy: 4e-6 * (magnitude + 8 * Float(cols) * 4 * 4),
                                   "level \(level) row \(r) blocks \(blocks)")
                }
            }
        }
    }

    /// Raw blocks of `type` with random f16 scales in [2^-8, 2^2) of either sign and random quant
    /// bytes (every value, -128 included for Q8_0, every nibble for Q4_0).
    private func rawBlocks(_ type: GGMLType, count: Int) -> [UInt8] {
        let size = type == .q8_0 ? 34 : 18
        var w = [UInt8](repeating: 0, count: count * size)
        for b in 0..<count {
            let exponent = UInt16(7 + generator.next() % 10), mantissa = UInt16(generator.next() % 1024)
            let half = (UInt16(generator.next() % 2) << 15) | (exponent << 10) | mantissa
            w[b * size] = UInt8(half & 0xff)
            w[b * size + 1] = UInt8(half >> 8)
            for j in 2..<size { w[b * size + j] = UInt8(truncatingIfNeeded: generator.next()) }
        }
        return w
    }

    /// The GEMM level's 16-row x 8-token tiles against plain C: row counts below, at and past a
    /// tile, token counts with every kind of remainder mod 8 (and below the GEMM's minimum, where it
    /// falls back), one to many blocks, one and two threads.
    func testPrefillGemmAgreesWithPlainCOnShapesWithRemainders() throws {
        try XCTSkipIf(ck_best_level() < Int32(CK_LEVEL_AVX512VNNI_GEMM), "CPU without AVX-512 VNNI")
        let shapes = [(1, 1, 4), (15, 3, 5), (16, 2, 8), (17, 7, 9), (33, 1, 3), (50, 4, 15), (16, 64, 16),
                      (40, 5, 17), (7, 11, 64), (130, 9, 23)]
        for type in [GGMLType.q8_0, .q4_0] {
            for (rows, blocks, tokens) in shapes {
                let cols = blocks * 32
                let w = rawBlocks(type, count: rows * blocks)
                let x = (0..<tokens * cols).map { _ in generator.nextFloat() * 4 }
                ck_set_level(Int32(CK_LEVEL_SCALAR))
                let reference = ckMatmul(type, w, rows: rows, cols: cols, x, tokens: tokens, threads: 1)
                let dense = try w.withUnsafeBytes { try dequantize(type, $0, count: rows * cols) }
                XCTAssertEqual(ck_set_level(Int32(CK_LEVEL_AVX512VNNI_GEMM)), Int32(CK_LEVEL_AVX512VNNI_GEMM))
                for threads in [1, 2] {
                    let y = ckMatmul(type, w, rows: rows, cols: cols, x, tokens: tokens, threads: threads)
                    for t in 0..<tokens {
                        for r in 0..<rows {
                            var magnitude: Float = 0
                            for j in 0..<cols { magnitude += abs(dense[r * cols + j] * x[t * cols + j]) }
                            // Block sums are exact integers on both paths; only f32 accumulation differs.
                            XCTAssertEqual(y[t * rows + r], reference[t * rows + r], accuracy: 1e-6 * magnitude,
                                           "\(type) \(rows)x\(cols)x\(tokens) threads \(threads) t\(t) r\(r)")
                        }
                    }
                }
            }
        }
    }

    func testActivationQuantizationMatchesDefinition() {
        let cols = 64, tokens = 2
        var x = (0..<tokens * cols).map { _ in generator.nextFloat() * 5 }
        for j in 32..<64 { x[j] = 0 }          // an all-zero block: scale 0, quants 0
        let activations = QuantizedActivations()
        x.withUnsafeBufferPointer { xp in
            let a = activations.quantize(xp.baseAddress!, tokens: tokens, cols: cols)
            for t in 0..<tokens {
                for b in 0..<2 {
                    let block = (0..<32).map { x[t * cols + b * 32 + $0] }
                    let d = block.map(abs).max()! / 127
                    XCTAssertEqual(a.d[t * 2 + b], d)
                    var sum: Int32 = 0
                    for j in 0..<32 {
                        let q = Int32(a.qs[t * cols + b * 32 + j])
                        XCTAssertEqual(q, d == 0 ? 0 : Int32((block[j] / d).rounded()), "t\(t) b\(b) j\(j)")
                        XCTAssertLessThanOrEqual(abs(q), 127)
                        sum += q
                    }
                    XCTAssertEqual(a.sums[t * 2 + b], sum)
                }
            }
        }
    }

    func testParallelForRunsEveryIndexOnce() {
        final class Counts: @unchecked Sendable {
            var hits: [Int32]
            init(_ n: Int) { hits = [Int32](repeating: 0, count: n) }
        }
        for (count, threads) in [(1, 2), (7, 2), (1000, 2), (5, 1), (64, 4)] {
            let counts = Counts(count)
            counts.hits.withUnsafeMutableBufferPointer { hits in
                var base = hits.baseAddress!
                withUnsafeMutablePointer(to: &base) { context in
                    ck_parallel_for(Int32(count), Int32(threads), { context, index in
                        let hits = context!.assumingMemoryBound(to: UnsafeMutablePointer<Int32>.self).pointee
                        hits[Int(index)] += 1      // each index is handed to exactly one thread
                    }, context)
                }
            }
            XCTAssertEqual(counts.hits, [Int32](repeating: 1, count: count), "count \(count) threads \(threads)")
        }
    }

    /// Workers that sit on a task far longer than the caller's own tasks take (as when descheduled
    /// on a busy machine), twice within a few jobs, bring a probe forward: the next jobs run on the
    /// caller alone.
    func testParallelForRunsOnCallerAloneAfterAWorkerStalls() {
        struct Probe {
            let caller: pthread_t
            let offCaller: UnsafeMutablePointer<Int32>
            let stall: Bool
        }
        let count = 64
        let offCaller = UnsafeMutablePointer<Int32>.allocate(capacity: count)
        defer { offCaller.deallocate() }
        func run(stall: Bool) -> Int {
            offCaller.initialize(repeating: 0, count: count)
            var probe = Probe(caller: pthread_self(), offCaller: offCaller, stall: stall)
            withUnsafeMutablePointer(to: &probe) { context in
                ck_parallel_for(Int32(count), 2, { context, index in
                    let probe = context!.assumingMemoryBound(to: Probe.self).pointee
                    if pthread_equal(pthread_self(), probe.caller) == 0 {
                        probe.offCaller[Int(index)] = 1
                        if probe.stall { usleep(30_000) }
                    } else if probe.stall {
                        usleep(200)
                    }
                }, context)
            }
            return (0..<count).reduce(0) { $0 + Int(offCaller[$1]) }
        }
        // Drain any solo stretch left by earlier tests and forget their timings, then stall until
        // a worker has taken a task.
        while ck_parallel_solo_jobs_left() > 0 { _ = run(stall: false) }
        ck_parallel_forget_rates()
        var stalledTasks = 0, runs = 0
        while ck_parallel_solo_jobs_left() == 0 && runs < 20 {
            stalledTasks += run(stall: true)      // one stall is tolerated, two in a row are not
            runs += 1
        }
        XCTAssertGreaterThan(stalledTasks, 0, "no worker ever took a task")
        let left = ck_parallel_solo_jobs_left()
        XCTAssertGreaterThan(left, 0)
        XCTAssertEqual(run(stall: false), 0, "a task ran off the calling thread during the probe")
        XCTAssertEqual(ck_parallel_solo_jobs_left(), left - 1)
        while ck_parallel_solo_jobs_left() > 0 { _ = run(stall: false) }
        ck_parallel_forget_rates()
    }

    /// The pool's mode follows measured speed: while a worker's tasks take far longer than the
    /// caller's (a worker that keeps being descheduled), jobs switch to the caller alone; once
    /// parallel jobs are faster again, a parallel probe finds it and they switch back. (Sleeps, not
    /// work, so the verdicts hold on a loaded machine too: each mode is ~3x the faster in turn.)
    func testParallelForSwitchesModeByMeasuredSpeed() {
        struct Job {
            let caller: pthread_t
            let callerTask: UInt32, workerTask: UInt32   // microseconds asleep per task
            let offCaller: UnsafeMutablePointer<Int32>
        }
        let offCaller = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
        defer { offCaller.deallocate() }
        let count = 16
        func run(caller: UInt32, worker: UInt32) {
            var job = Job(caller: pthread_self(), callerTask: caller, workerTask: worker, offCaller: offCaller)
            withUnsafeMutablePointer(to: &job) { context in
                ck_parallel_for(Int32(count), 2, { context, _ in
                    let job = context!.assumingMemoryBound(to: Job.self).pointee
                    if pthread_equal(pthread_self(), job.caller) == 0 {
                        job.offCaller.pointee += 1
                        if job.workerTask > 0 { usleep(job.workerTask) }
                    } else {
                        usleep(job.callerTask)
                    }
                }, context)
            }
        }
        while ck_parallel_solo_jobs_left() > 0 { run(caller: 0, worker: 0) }
        ck_parallel_forget_rates()
        // A slow worker: parallel jobs take >= 8 ms, alone ~16 x 0.2 ms. The pool must settle on the
        // caller alone (a solo stretch longer than one probe) within a few hundred jobs.
        var jobs = 0
        while ck_parallel_solo_jobs_left() <= 64 && jobs < 600 {
            run(caller: 200, worker: 8_000)
            jobs += 1
        }
        XCTAssertGreaterThan(ck_parallel_solo_jobs_left(), 64, "still parallel after \(jobs) jobs with a slow worker")
        offCaller.pointee = 0
        for _ in 0..<32 { run(caller: 200, worker: 8_000) }
        XCTAssertEqual(offCaller.pointee, 0, "a task ran off the calling thread in solo mode")
        // A worker with nothing to wait for: alone ~16 x 0.3 ms, parallel ~0.3-0.6 ms (the worker takes
        // all but the caller's first task or two). The next parallel probe (after the rest of the
        // solo stretch) switches back.
        jobs = 0
        offCaller.pointee = 0
        while jobs < 1000 {
            let solo = ck_parallel_solo_jobs_left() > 0
            run(caller: 300, worker: 0)
            jobs += 1
            if !solo && ck_parallel_solo_jobs_left() == 0 { break }
        }
        // Parallel again: the worker takes most tasks (probes may still run some jobs alone: these
        // tasks sleep, so the process uses little CPU, which looks like a busy machine).
        offCaller.pointee = 0
        for _ in 0..<300 { run(caller: 300, worker: 0) }
        XCTAssertGreaterThan(Int(offCaller.pointee), 300 * count / 4, "not back to parallel jobs after \(jobs) jobs")
        ck_parallel_forget_rates()
    }

    /// The quantized model end to end on every kernel level and thread count: each stays close to
    /// the PyTorch reference (as the Q8_0 parity test asks) and to the first level. Levels differ
    /// only in float summation order, but a last-bit change can move an activation across an int8
    /// rounding boundary in a later layer, so after 4 loop steps they agree to ~0.05, not 1e-6.
    func testQuantizedModelMatchesReferenceOnEveryKernelLevel() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let parity = try ReferenceParity(fixture: "ouro-trained-s")
        let prompt = parity.prompts[0]
        let golden = try parity.reference.floats(prompt + ".final_logits")
        for type in [GGMLType.q8_0, .q4_0] {
            let path = folder + "/trained-\(type).gguf"
            try GGUFBuilder.write(fixture: "ouro-trained-s", matrixType: type, to: path)
            let weights = try OuroWeights.load(gguf: path)
            var first: [Float]?
            for level in Int32(CK_LEVEL_SCALAR)...ck_best_level() {
                ck_set_level(level)
                for threads in [1, 2] {
                    let out = try OuroRunner(weights: weights, threads: threads).forward(tokens: parity.tokens(prompt))
                    let ours = out.logits(.lastStep)
                    let diff = ReferenceParity.maxAbsDiff(ours, golden, "\(type) level \(level)")
                    XCTAssertLessThan(diff, type == .q8_0 ? 0.5 : 2.0, "\(type) level \(level) threads \(threads)")
                    if let first {
                        XCTAssertLessThan(ReferenceParity.maxAbsDiff(ours, first, "levels"), 0.15, "\(type) level \(level) threads \(threads)")
                    } else {
                        first = ours
                    }
                }
            }
        }
    }
}
