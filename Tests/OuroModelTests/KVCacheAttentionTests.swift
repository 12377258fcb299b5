import CKernels
import Quantization
import XCTest
@testable import OuroModel

/// The attention kernels over stored K/V rows (kernels_attention.c) against a plain double-precision
/// softmax attention over the same rows decoded by the Quantization module's codecs.
final class KVCacheAttentionTests: XCTestCase {

    private func ggmlType(_ type: KVCacheType) -> GGMLType {
        switch type {
        case .f32: return .f32
        case .f16: return .f16
        case .q8_0: return .q8_0
        }
    }

    func testStoredRowsAreTheGGMLEncodings() throws {
        var g = UnitIntervalGenerator(state: 7)
        let dim = 128
        let x = (0..<dim).map { _ in g.next() * 3 }
        for type in KVCacheType.allCases {
            var stored = [UInt8](repeating: 0, count: type.rowBytes(dim: dim))
            ck_kv_store(type.kernelType, x, Int32(dim), &stored)
            XCTAssertEqual(stored, try quantize(ggmlType(type), x), "\(type)")
        }
    }

    /// The vectorized f16 store (F16C, AVX-512, NEON) at every level against the Quantization
    /// module's f16 encoding: ties, values that round to inf, subnormal halves, signed zeros, and row
    /// lengths with every vector tail; and the per-position store of several kv heads
    /// (`ck_kv_store_heads`, a stride apart) against one `ck_kv_store` per head.
    func testVectorizedHalfStoreMatchesTheEncodingAtEveryLevel() throws {
        var g = UnitIntervalGenerator(state: 11)
        let special: [Float] = [1.00048828125, 1.00146484375, -1.00048828125, 65504, 65519.99, 65520, -70000, .infinity, -.infinity,
                                5.9604645e-8, 2.9802322e-8, 2.9802326e-8, 8.940697e-8, 6.1035156e-5, 6.0975552e-5, 0, -0.0]
        var levels: [Int32] = [Int32(CK_LEVEL_SCALAR)]
        for level in [Int32(CK_LEVEL_AVX2), Int32(CK_LEVEL_AVX512VNNI)] where ck_best_level() >= level { levels.append(level) }
        let previous = ck_level()
        defer { ck_set_level(previous) }
        for level in levels {
            ck_set_level(level)
            for n in [1, 7, 8, 15, 16, 17, 31, 33, 64, 100] {
                let x = (0..<n).map { i in i % 3 == 0 ? special[(i / 3) % special.count] : (g.next() - 0.5) * Float(1 << (i % 20)) * 1e-4 }
                var stored = [UInt8](repeating: 0x55, count: 2 * n + 2)
                ck_kv_store_halves(x, Int32(n), &stored)
                XCTAssertEqual(Array(stored[0..<2 * n]), try quantize(.f16, x), "level \(level), \(n) values")
                XCTAssertEqual(Array(stored.suffix(2)), [UInt8](repeating: 0x55, count: 2), "level \(level): nothing written past \(n) values")
            }
            let heads = 3, dim = 64, stride = 5 * 136
            let x = (0..<heads * dim).map { _ in (g.next() - 0.5) * 8 }
            for type in KVCacheType.allCases {
                var one = [UInt8](repeating: 0x33, count: heads * stride), all = one
                for h in 0..<heads {
                    x.withUnsafeBufferPointer { ck_kv_store(type.kernelType, $0.baseAddress! + h * dim, Int32(dim), &one[h * stride]) }
                }
                ck_kv_store_heads(type.kernelType, x, Int32(heads), Int32(dim), &all, stride)
                XCTAssertEqual(all, one, "\(type), level \(level)")
            }
        }
    }

    /// Rows [0, cached) from a stored span (one chunk-like run), rows after that from an f32 span,
    /// queries at positions cached ..< cached + T with the causal mask.
    private func check(type: KVCacheType, dim: Int, cached: Int, tokens T: Int, group: Int, level: Int32) throws {
        var g = UnitIntervalGenerator(state: UInt64(dim * 31 + cached * 7 + T))
        let rowBytes = type.rowBytes(dim: dim)
        let keys = (0..<cached * dim).map { _ in g.next() * 2 }, values = (0..<cached * dim).map { _ in g.next() }
        let freshK = (0..<T * dim).map { _ in g.next() * 2 }, freshV = (0..<T * dim).map { _ in g.next() }
        var storedK = [UInt8](repeating: 0, count: max(cached, 1) * rowBytes), storedV = storedK
        for p in 0..<cached {
            keys.withUnsafeBufferPointer { ck_kv_store(type.kernelType, $0.baseAddress! + p * dim, Int32(dim), &storedK[p * rowBytes]) }
            values.withUnsafeBufferPointer { ck_kv_store(type.kernelType, $0.baseAddress! + p * dim, Int32(dim), &storedV[p * rowBytes]) }
        }
        // What the stored rows hold, decoded independently.
        let decodedK = try dequantize(ggmlType(type), storedK.withUnsafeBytes { $0 }, count: max(cached, 1) * dim)
        let decodedV = try dequantize(ggmlType(type), storedV.withUnsafeBytes { $0 }, count: max(cached, 1) * dim)
        // One token: `group` query rows at the same position; several: one row per token.
        let rows = T == 1 ? group : T
        let q = (0..<rows * dim).map { _ in g.next() }
        let scale = 1 / Float(dim).squareRoot()

        // Over q8_0 rows the query is quantized (int8 blocks of 32, f32 scale, as the linear layers'
        // activations) and the scores use the integer dot: the reference takes the same rounded query.
        let roundedQ = type == .q8_0 ? Self.quantizedAsActivations(q) : q
        var expected = [Double](repeating: 0, count: rows * dim)
        for r in 0..<rows {
            let visible = cached + (T == 1 ? 1 : r + 1)
            func key(_ p: Int) -> ArraySlice<Float> { p < cached ? decodedK[p * dim..<(p + 1) * dim] : freshK[(p - cached) * dim..<(p - cached + 1) * dim] }
            func value(_ p: Int) -> ArraySlice<Float> { p < cached ? decodedV[p * dim..<(p + 1) * dim] : freshV[(p - cached) * dim..<(p - cached + 1) * dim] }
            let scores = (0..<visible).map { p in
                Double(scale) * zip(key(p), (p < cached ? roundedQ : q)[r * dim..<(r + 1) * dim]).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
            }
            let top = scores.max()!
            let weights = scores.map { exp($0 - top) }, total = weights.reduce(0, +)
            for p in 0..<visible {
                for (i, v) in value(p).enumerated() { expected[r * dim + i] += weights[p] / total * Double(v) }
            }
        }

        let previous = ck_level()
        defer { ck_set_level(previous) }
        ck_set_level(level)
        var out = [Float](repeating: 0, count: rows * dim)
        var running = [Float](repeating: 0, count: 2 * rows)
        var scratch = [Float](repeating: 0, count: ck_attn_scratch_floats())
        storedK.withUnsafeBytes { sk in storedV.withUnsafeBytes { sv in freshK.withUnsafeBytes { fk in freshV.withUnsafeBytes { fv in
            q.withUnsafeBufferPointer { qp in out.withUnsafeMutableBufferPointer { op in running.withUnsafeMutableBufferPointer { rp in
                scratch.withUnsafeMutableBufferPointer { scp in
                    var state = ck_attn_rows(rows: Int32(rows), dim: Int32(dim), q: qp.baseAddress!, ldq: dim,
                                             limit0: Int32(cached + 1), rows_per_position: Int32(T == 1 ? group : 1),
                                             scale: scale, max: rp.baseAddress!, sum: rp.baseAddress! + rows,
                                             out: op.baseAddress!, ldo: dim, scratch: scp.baseAddress!)
                    ck_attn_begin(&state)
                    // The stored rows in two spans, as a cache split over chunks hands them over.
                    let split = cached / 3
                    var first = ck_kv_span(type: type.kernelType, k: sk.baseAddress!, v: sv.baseAddress!, stride: rowBytes,
                                           count: Int32(split), first: 0)
                    var second = ck_kv_span(type: type.kernelType, k: sk.baseAddress! + split * rowBytes,
                                            v: sv.baseAddress! + split * rowBytes, stride: rowBytes,
                                            count: Int32(cached - split), first: Int32(split))
                    var fresh = ck_kv_span(type: Int32(CK_KV_F32), k: fk.baseAddress!, v: fv.baseAddress!, stride: dim * 4,
                                           count: Int32(T), first: Int32(cached))
                    ck_attend(&first, &state)
                    ck_attend(&second, &state)
                    ck_attend(&fresh, &state)
                    ck_attn_finish(&state, op.baseAddress!, dim)
                }
            } } }
        } } } }
        // q8_0: each weight p * d(v) is rounded to 15 bits of its 64-position block's largest, off by
        // at most half a step times |v| <= the largest |v|: at most cached / 65534 of it in all.
        let weightRounding = type == .q8_0 ? Double(decodedV.prefix(cached * dim).map(abs).max() ?? 0) * Double(cached) / 65534 : 0
        for i in out.indices {
            XCTAssertEqual(Double(out[i]), expected[i], accuracy: 2e-6 + 2e-5 * abs(expected[i]) + weightRounding,
                           "\(type) dim \(dim) cached \(cached) T \(T) level \(level) [\(i)]")
        }
    }

    /// x rounded as ck_quantize_activations rounds it: blocks of 32, d = max|x| / 127, q = round(x / d).
    private static func quantizedAsActivations(_ x: [Float]) -> [Float] {
        var out = x
        for start in stride(from: 0, to: x.count, by: 32) {
            let block = x[start..<start + 32]
            let d = block.map(abs).max()! / 127, inverse: Float = d != 0 ? 1 / d : 0
            for i in block.indices { out[i] = max(-127, min(127, (x[i] * inverse).rounded())) * d }
        }
        return out
    }

    func testAttentionOverEveryStoredTypeMatchesAPlainSoftmaxAtEveryLevel() throws {
        var levels: [Int32] = [Int32(CK_LEVEL_SCALAR)]
        if ck_best_level() >= CK_LEVEL_AVX2 { levels.append(Int32(CK_LEVEL_AVX2)) }
        if ck_best_level() >= CK_LEVEL_AVX512VNNI { levels.append(Int32(CK_LEVEL_AVX512VNNI)) }
        for level in levels {
            for type in KVCacheType.allCases {
                // Decode (one token, grouped query heads), a short prefill, and a prefill longer than
                // a key block and a row tile (64) over a long cached prefix.
                try check(type: type, dim: 64, cached: 37, tokens: 1, group: 2, level: level)
                try check(type: type, dim: 128, cached: 300, tokens: 1, group: 1, level: level)
                try check(type: type, dim: 64, cached: 5, tokens: 9, group: 1, level: level)
                try check(type: type, dim: 32, cached: 150, tokens: 130, group: 1, level: level)
                try check(type: type, dim: 64, cached: 0, tokens: 70, group: 1, level: level)
            }
        }
    }
}
