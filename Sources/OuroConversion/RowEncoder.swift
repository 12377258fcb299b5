import OuroModel
import Quantization

/// How the converter and the sensitivity search turn float rows into stored rows: importance-weighted
/// when an imatrix column vector is given (ggml's quant_weights path), searched Q4_0 when the recipe
/// asks for it, else ggml's reference quantizer.
struct RowEncoder {
    let type: GGMLType
    let importance: [Float]?
    let searchedQ4_0: Bool

    func encode(_ row: UnsafePointer<Float>, count: Int, into destination: UnsafeMutableRawPointer) {
        if let importance, type.isQuantized, importance.count == count {
            importance.withUnsafeBufferPointer {
                quantizeRow(type, row, count: count, importance: $0.baseAddress!, into: destination)
            }
        } else if type == .q4_0 && searchedQ4_0 {
            quantizeRowQ4_0Searched(row, count: count, importance: nil, into: destination)
        } else {
            quantizeRow(type, row, count: count, into: destination)
        }
    }

    /// The whole tensor re-encoded in memory (the caller checked the rows are whole blocks).
    func encode(_ tensor: WeightTensor) throws -> WeightTensor {
        let columns = tensor.columns, rows = tensor.rows
        let rowBytes = try type.checkedRowByteCount(columns)
        let floats = tensor.floats()
        var bytes = [UInt8](repeating: 0, count: rows * rowBytes)
        floats.withUnsafeBufferPointer { src in
            bytes.withUnsafeMutableBytes { dst in
                for r in 0..<rows {
                    encode(src.baseAddress! + r * columns, count: columns, into: dst.baseAddress! + r * rowBytes)
                }
            }
        }
        return try WeightTensor(type: type, shape: tensor.shape, copying: bytes)
    }
}
