// Quantization guided by per-column importance (an "imatrix": for each input column of a weight
// matrix, the mean squared activation it sees), as ggml's `quantize_<type>(…, quant_weights)`.
// Columns that carry large activations get their weights reproduced more exactly.

/// Quantizes one row like `quantizeRow`, weighting each column's error by `importance[column]`
/// (`count` values, all ≥ 0) when given. For Q3_K, Q4_K, Q5_K, Q6_K, IQ4_NL, IQ4_XS and Q4_0 this is ggml's imatrix path
/// byte for byte; Q8_0 and the float types ignore the importance, as ggml does. With `importance` nil
/// it is exactly `quantizeRow`.
public func quantizeRow(_ type: GGMLType, _ source: UnsafePointer<Float>, count: Int, importance: UnsafePointer<Float>?,
                        into destination: UnsafeMutableRawPointer) {
    precondition(type.rowByteCount(count) != nil, "quantizeRow: \(count) is not a whole number of \(type.name) blocks")
    guard let importance else { return quantizeRow(type, source, count: count, into: destination) }
    let blocks = count / type.blockSize
    switch type {
    case .f32, .f16, .bf16, .q8_0: quantizeRow(type, source, count: count, into: destination)
    case .q4_0: Q4_0Search.quantize(source, count: count, importance: importance, into: destination)
    case .q3_K: BlockQ3_K.quantize(source, blocks: blocks, importance: importance, into: destination)
    case .q4_K: BlockQ4_K.quantize(source, blocks: blocks, importance: importance, into: destination)
    case .q5_K: BlockQ5_K.quantize(source, blocks: blocks, importance: importance, into: destination)
    case .q6_K: BlockQ6_K.quantize(source, blocks: blocks, importance: importance, into: destination)
    case .iq4_nl: BlockIQ4_NL.quantize(source, blocks: blocks, importance: importance, into: destination)
    case .iq4_xs: BlockIQ4_XS.quantize(source, blocks: blocks, importance: importance, into: destination)
    }
}

/// Q4_0 with a per-block weighted least-squares scale search; the output is ordinary Q4_0.
/// With `importance` it equals `quantizeRow(.q4_0, …, importance:)` (ggml's imatrix Q4_0); without,
/// it minimizes the plain squared error of each block. Plain `quantizeRow(.q4_0, …)` stays ggml's reference max/-8 rounding.
public func quantizeRowQ4_0Searched(_ source: UnsafePointer<Float>, count: Int, importance: UnsafePointer<Float>?,
                                    into destination: UnsafeMutableRawPointer) {
    precondition(GGMLType.q4_0.rowByteCount(count) != nil, "quantizeRowQ4_0Searched: \(count) is not a whole number of Q4_0 blocks")
    Q4_0Search.quantize(source, count: count, importance: importance, into: destination)
}

/// Array form of `quantizeRow(_:_:count:importance:into:)`: throws when `values` is not a whole number
/// of blocks or `importance` does not have one value per element.
public func quantize(_ type: GGMLType, _ values: [Float], importance: [Float]?) throws -> [UInt8] {
    try quantizeArray(type, values, importance) { s, n, imp, d in quantizeRow(type, s, count: n, importance: imp, into: d) }
}

/// Array form of `quantizeRowQ4_0Searched`.
public func quantizeQ4_0Searched(_ values: [Float], importance: [Float]?) throws -> [UInt8] {
    try quantizeArray(.q4_0, values, importance) { s, n, imp, d in quantizeRowQ4_0Searched(s, count: n, importance: imp, into: d) }
}

private func quantizeArray(_ type: GGMLType, _ values: [Float], _ importance: [Float]?,
                           _ body: (UnsafePointer<Float>, Int, UnsafePointer<Float>?, UnsafeMutableRawPointer) -> Void) throws -> [UInt8] {
    let byteCount = try type.checkedRowByteCount(values.count)
    if let importance, importance.count != values.count {
        throw QuantizationError.importanceCountMismatch(count: values.count, importance: importance.count)
    }
    var out = [UInt8](repeating: 0, count: byteCount)
    guard !values.isEmpty else { return out }
    values.withUnsafeBufferPointer { src in
        out.withUnsafeMutableBytes { dst in
            if let importance {
                importance.withUnsafeBufferPointer { body(src.baseAddress!, values.count, $0.baseAddress!, dst.baseAddress!) }
            } else {
                body(src.baseAddress!, values.count, nil, dst.baseAddress!)
            }
        }
    }
    return out
}
