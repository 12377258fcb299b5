import CKernels

extension LinearKernels {
    /// The `throughput` products: 2...CK_SMALL_T_MAX_TOKENS tokens, every matrix of an integer type,
    /// through `ck_matmul_lean` (one activation quantization and one pool job for the group; types
    /// without a lean kernel at this level take the usual row kernels inside it), reading the packed
    /// copies of `leanPacked` where it has them. False (nothing
    /// written) when the product is not one of those, so the caller takes its usual path.
    func throughputLinear(_ ws: [WeightTensor], _ x: UnsafePointer<Float>, tokens: Int,
                          into ys: [UnsafeMutablePointer<Float>]) -> Bool {
        guard !decodeIdentical, integerPrefill, (2...Int(CK_SMALL_T_MAX_TOKENS)).contains(tokens),
              let cols = ws.first?.columns, ws.allSatisfy({ $0.columns == cols && $0.rows > 0 }) else { return false }
        let types = ws.map { Self.integerKernelType($0.type) }
        guard !types.contains(nil), types.contains(where: { ck_lean_tokens($0!) >= tokens }) else { return false }
        precondition(cols <= maxColumns, "LinearKernels scratch sized for \(maxColumns) columns, got \(cols)")
        var a = quantized.quantize(x, tokens: tokens, cols: cols)
        let products = zip(ws, ys).enumerated().map { i, pair in
            ck_product(type: types[i]!, w: pair.0.bytes.baseAddress!, row_bytes: pair.0.rowByteCount,
                       rows: Int32(pair.0.rows), y: pair.1, ldy: pair.0.rows)
        }
        let packed: [UnsafeRawPointer?] = ws.map { leanPacked?.copy(of: $0) }
        products.withUnsafeBufferPointer { products in
            packed.withUnsafeBufferPointer { packed in
                ck_matmul_lean_packed(products.baseAddress!, packed.baseAddress!, Int32(products.count), &a, Int32(threads))
            }
        }
        return true
    }

    /// The MLP's gated unit of a `throughput` product (gate = silu(x · Gateᵀ) * (x · Upᵀ) into
    /// `gate`, `up` scratch) as one pool job (`ck_matmul_lean_gated`): each task runs the same rows
    /// of both products and their silu product, so the T x I `expf` calls are split over the
    /// threads instead of running on the caller while the workers wait (~3 % of a 4-token step).
    /// The silu expression is `siluGate`'s. False (nothing written) when `throughputLinear` would
    /// not take the pair.
    func throughputGatedUnit(gate wg: WeightTensor, up wu: WeightTensor, _ x: UnsafePointer<Float>, tokens: Int,
                             into gate: UnsafeMutablePointer<Float>, up: UnsafeMutablePointer<Float>) -> Bool {
        guard throughput, !decodeIdentical, integerPrefill, (2...Int(CK_SMALL_T_MAX_TOKENS)).contains(tokens),
              wg.columns == wu.columns, wg.rows == wu.rows, wg.rows > 0,
              let gateType = Self.integerKernelType(wg.type), let upType = Self.integerKernelType(wu.type),
              ck_lean_tokens(gateType) >= tokens || ck_lean_tokens(upType) >= tokens else { return false }
        let cols = wg.columns
        precondition(cols <= maxColumns, "LinearKernels scratch sized for \(maxColumns) columns, got \(cols)")
        var a = quantized.quantize(x, tokens: tokens, cols: cols)
        let products = [
            ck_product(type: gateType, w: wg.bytes.baseAddress!, row_bytes: wg.rowByteCount, rows: Int32(wg.rows), y: gate, ldy: wg.rows),
            ck_product(type: upType, w: wu.bytes.baseAddress!, row_bytes: wu.rowByteCount, rows: Int32(wu.rows), y: up, ldy: wu.rows),
        ]
        let packed: [UnsafeRawPointer?] = [leanPacked?.copy(of: wg), leanPacked?.copy(of: wu)]
        return products.withUnsafeBufferPointer { products in
            packed.withUnsafeBufferPointer { packed in
                ck_matmul_lean_gated(products.baseAddress!, packed.baseAddress!, &a, Int32(threads)) != 0
            }
        }
    }
}
