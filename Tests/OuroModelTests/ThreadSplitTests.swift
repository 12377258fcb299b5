import CKernels
import Foundation
import Quantization
import XCTest
@testable import OuroModel

/// How decode work is split over threads: the pool hands each participant a contiguous range of
/// task indices (taken front to back; an idle thread takes the others' tasks from the back), and
/// the MLP's gated unit runs both products and silu inside one job with the results of the
/// separate steps.
final class ThreadSplitTests: XCTestCase {
    private var generator = SplitMix(seed: 11)

    /// Every index runs once; within each participant's range, the tasks its owner ran are a prefix
    /// run in increasing order and the tasks another thread took are the rest (a suffix), so each
    /// thread streams a contiguous stretch of rows.
    func testParallelForGivesEachThreadAContiguousRange() {
        final class Record: @unchecked Sendable {
            let caller = pthread_self()
            let lock = NSLock()
            var order: [(index: Int, onCaller: Bool)] = []
        }
        while ck_parallel_solo_jobs_left() > 0 { ck_parallel_for(2, 2, { _, _ in }, nil) }
        for count in [2, 7, 64, 1000] {
            let record = Record()
            withExtendedLifetime(record) {
                ck_parallel_for(Int32(count), 2, { context, index in
                    let record = Unmanaged<Record>.fromOpaque(context!).takeUnretainedValue()
                    usleep(20)      // long enough that a spinning worker joins in
                    record.lock.lock()
                    record.order.append((Int(index), pthread_equal(pthread_self(), record.caller) != 0))
                    record.lock.unlock()
                }, Unmanaged.passUnretained(record).toOpaque())
            }
            XCTAssertEqual(record.order.map(\.index).sorted(), Array(0..<count), "count \(count)")
            let half = count / 2
            for (range, ownerIsCaller) in [(0..<half, true), (half..<count, false)] {
                let inRange = record.order.filter { range.contains($0.index) }
                let byOwner = inRange.filter { $0.onCaller == ownerIsCaller }.map(\.index)
                XCTAssertEqual(byOwner, Array(range.lowerBound..<range.lowerBound + byOwner.count),
                               "count \(count): the owner's tasks of \(range) are a prefix in order")
            }
        }
    }

    /// gatedUnit on two threads equals the two products through `linear` and silu(g) * u computed
    /// here, bit for bit, for the integer types (one fused job) and f16 (the plain path).
    func testGatedUnitMatchesSeparateProductsAndSilu() throws {
        let cols = 512, rows = 300        // 300: chunks of 64 with a remainder
        for type in [GGMLType.q4_0, .q4_K, .q8_0, .f16] {
            let ws = try (0..<2).map { _ -> WeightTensor in
                let values = (0..<rows * cols).map { _ in generator.nextFloat() * 2 - 1 }
                let owned = try quantize(type, values).withUnsafeBytes { OwnedBytes(copying: $0) }
                return WeightTensor(type: type, shape: [rows, cols], bytes: owned.bytes, owner: owned)
            }
            let x = (0..<cols).map { _ in generator.nextFloat() * 4 - 2 }
            let kernels = LinearKernels(maxColumns: cols, threads: 2)
            var gate = [Float](repeating: .nan, count: rows), up = gate, g = gate, u = gate
            x.withUnsafeBufferPointer { xp in
                kernels.gatedUnit(gate: ws[0], up: ws[1], xp.baseAddress!, tokens: 1, into: &gate, up: &up)
                kernels.linear(ws[0], xp.baseAddress!, tokens: 1, into: &g)
                kernels.linear(ws[1], xp.baseAddress!, tokens: 1, into: &u)
            }
            for r in 0..<rows {
                let expected = (g[r] / (1 + expf(-g[r]))) * u[r]
                XCTAssertEqual(gate[r].bitPattern, expected.bitPattern, "\(type) row \(r)")
            }
        }
    }
}
