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
}
