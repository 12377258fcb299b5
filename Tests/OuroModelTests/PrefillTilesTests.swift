import CKernels
import Foundation
import OuroTestSupport
import Quantization
import XCTest
@testable import OuroModel

/// Kept prefill tiles (ck_prefill_packs.h): the K-quant GEMM over registered weights gives the same
/// bits as its repacking path, on the call that packs the tiles and on later calls that reuse them,
/// for row remainders and one to three threads; releasing the range frees the tiles, and weights
/// changed after a release are multiplied as they are now, not from stale tiles.
final class PrefillTilesTests: XCTestCase {
    private var generator = SplitMix(seed: 41)

    override func tearDown() {
        ck_set_level(ck_best_level())
        super.tearDown()
    }

    private func matrix(_ type: GGMLType, rows: Int, cols: Int) throws -> [UInt8] {
        try quantize(type, (0..<rows * cols).map { _ in generator.nextFloat() })
    }

    /// ck_matmul over `w` with the bytes' address registered for kept tiles first (a copy in one
    /// allocation, so the registered range is exactly the matrix).
    private func keptMatmul(_ type: GGMLType, _ w: UnsafeRawBufferPointer, rows: Int, cols: Int, _ x: [Float], tokens: Int,
                            threads: Int) -> [Float] {
        var y = [Float](repeating: .nan, count: tokens * rows)
        let activations = QuantizedActivations()
        x.withUnsafeBufferPointer { xp in
            var a = activations.quantize(xp.baseAddress!, tokens: tokens, cols: cols)
            y.withUnsafeMutableBufferPointer { yp in
                ck_matmul(LinearKernels.integerKernelType(type)!, w.baseAddress!, type.rowByteCount(cols)!, Int32(rows), &a,
                          yp.baseAddress!, rows, Int32(threads))
            }
        }
        return y
    }

    func testKeptTilesGiveTheRepackingPathsBits() throws {
        guard ck_best_level() >= Int32(CK_LEVEL_AVX512VNNI_GEMM) else { throw XCTSkip("no 512-bit VNNI GEMM on this CPU") }
        ck_set_level(Int32(CK_LEVEL_AVX512VNNI_GEMM))
        let before = ck_prefill_packs_bytes()
        for type in [GGMLType.q4_K, .q5_K, .q6_K, .q3_K, .iq4_xs] {
            for (rows, superBlocks) in [(17, 1), (40, 2), (65, 3)] {
                let cols = superBlocks * 256
                let bytes = try matrix(type, rows: rows, cols: cols)
                let w = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 64)
                defer { w.deallocate() }
                w.copyBytes(from: bytes)
                for tokens in [4, 9, 17] {
                    let x = (0..<tokens * cols).map { _ in generator.nextFloat() * 4 }
                    let repacked = ckMatmul(type, bytes, rows: rows, cols: cols, x, tokens: tokens, threads: 1)
                    XCTAssertEqual(ck_prefill_packs_register(w.baseAddress!, w.count), 1)
                    for threads in [1, 2, 3, 1] {   // the first call packs, the others reuse (or race for) the tiles
                        let kept = keptMatmul(type, UnsafeRawBufferPointer(w), rows: rows, cols: cols, x, tokens: tokens, threads: threads)
                        XCTAssertEqual(kept.map(\.bitPattern), repacked.map(\.bitPattern), "\(type) \(rows)x\(cols)x\(tokens) threads \(threads)")
                    }
                    // Every tile was packed: 16-row tiles of one byte per weight at least.
                    XCTAssertGreaterThanOrEqual(ck_prefill_packs_bytes() - before, rows * cols, "\(type)")
                    ck_prefill_packs_release(w.baseAddress!)
                    XCTAssertEqual(ck_prefill_packs_bytes(), before, "\(type): released")
                }
                // New weights in the same bytes after a release: multiplied as they are now.
                let x = (0..<5 * cols).map { _ in generator.nextFloat() * 2 }
                XCTAssertEqual(ck_prefill_packs_register(w.baseAddress!, w.count), 1)
                _ = keptMatmul(type, UnsafeRawBufferPointer(w), rows: rows, cols: cols, x, tokens: 5, threads: 1)
                ck_prefill_packs_release(w.baseAddress!)
                let changed = try matrix(type, rows: rows, cols: cols)
                w.copyBytes(from: changed)
                XCTAssertEqual(ck_prefill_packs_register(w.baseAddress!, w.count), 1)
                let kept = keptMatmul(type, UnsafeRawBufferPointer(w), rows: rows, cols: cols, x, tokens: 5, threads: 2)
                ck_prefill_packs_release(w.baseAddress!)
                let expected = ckMatmul(type, changed, rows: rows, cols: cols, x, tokens: 5, threads: 1)
                XCTAssertEqual(kept.map(\.bitPattern), expected.map(\.bitPattern), "\(type) \(rows)x\(cols): changed weights")
            }
        }
    }

    func testRegistrationsAreCountedAndOverlapsRefused() {
        let w = UnsafeMutableRawBufferPointer.allocate(byteCount: 8192, alignment: 64)
        defer { w.deallocate() }
        let base = UnsafeRawPointer(w.baseAddress!)
        XCTAssertEqual(ck_prefill_packs_register(base, 8192), 1)
        XCTAssertEqual(ck_prefill_packs_register(base, 8192), 1, "the same range again: shared")
        XCTAssertEqual(ck_prefill_packs_register(base + 4096, 4096), 0, "an overlapping range")
        ck_prefill_packs_release(base)
        XCTAssertEqual(ck_prefill_packs_register(base + 4096, 4096), 0, "still held by the second registration")
        ck_prefill_packs_release(base)
        XCTAssertEqual(ck_prefill_packs_register(base + 4096, 4096), 1, "released: the bytes are free again")
        ck_prefill_packs_release(base + 4096)
        XCTAssertEqual(ck_prefill_packs_register(nil, 10), 0)
    }
}
