import Foundation
import OuroModel
import OuroTestSupport
import Quantization
import XCTest
@testable import OuroConversion

/// Error-compensating rounding on the trained fixture's real layers and Hessians.
final class ErrorCompensatingRoundingTests: XCTestCase {
    private static let calibration: [Int] = {
        // Tokens from the committed calibration file (training-split text), 256 of them.
        let path = Fixtures.root + "/../../Docs/calibration/trained-s-textwrap.txt"
        let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return Array(text.split(whereSeparator: { $0 == "," || $0.isWhitespace }).compactMap { Int($0) }.prefix(256))
    }()

    /// H of the output head's input is Σ over every loop step's normed state of x xᵀ.
    func testOutputHessianIsTheSumOfOuterProductsOfEveryStepState() throws {
        let weights = try OuroWeights.load(checkpoint: Fixtures.folder("ouro-tiny-a"))
        let tokens = [0, 17, 99, 5, 250, 3, 3, 41, 120, 7]
        let hessians = try Hessians.collect(weights: weights, tokens: tokens)
        let out = try OuroRunner(weights: weights).forward(tokens: tokens)
        let n = out.hidden, h = try XCTUnwrap(hessians.byTensor["output.weight"])
        XCTAssertEqual(h.rows, out.steps * out.tokens)
        for (i, j) in [(0, 0), (3, 7), (7, 3), (n - 1, 1)] {
            var expected = 0.0
            for step in out.stepHidden { for t in 0..<out.tokens { expected += Double(step[t * n + i]) * Double(step[t * n + j]) } }
            XCTAssertEqual(Double(h.values[i * n + j]), expected, accuracy: 1e-4 * max(1, abs(expected)))
        }
    }

    /// Setting one element's code through `roundElement` gives what the dequantizer then reads, and
    /// it is the nearest value on the block's grid.
    func testRoundElementAgreesWithTheDequantizer() throws {
        var generator = SystemRandomNumberGenerator()
        for type in [GGMLType.q4_0, .iq4_nl, .q4_K, .q6_K, .iq4_xs, .q5_K, .q3_K] {
            let values = (0..<type.blockSize).map { _ in Float.random(in: -1...1, using: &generator) }
            var block = try quantize(type, values)
            for index in [0, 5, type.blockSize - 1] {
                let target = Float.random(in: -1.2...1.2, using: &generator)
                let got = block.withUnsafeMutableBytes { roundElement(type, block: $0.baseAddress!, index: index, target: target) }
                let decoded = try block.withUnsafeBytes { try dequantize(type, $0, count: type.blockSize) }
                XCTAssertEqual(decoded[index], got, "\(type.name) element \(index)")
                // Nearest: every other code of this element is no closer.
                let codes = type == .q6_K ? 64 : type == .q5_K ? 32 : 16
                var copy = block
                for _ in 0..<codes {
                    let alternative = decoded[index] + Float.random(in: -2...2, using: &generator)
                    let other = copy.withUnsafeMutableBytes { roundElement(type, block: $0.baseAddress!, index: index, target: alternative) }
                    XCTAssertLessThanOrEqual(abs(got - target), abs(other - target) + 1e-6, "\(type.name)")
                }
            }
        }
    }

    /// On the projections of one block of the trained fixture (every input site: q/k/v, o, gate/up,
    /// down), for every type with element codes, GPTQ's H-weighted
    /// output error is no larger than ggml's plain rounding's (with and without importance) on the
    /// Hessian it was given — and clearly smaller in total.
    func testNeverWorseThanPlainRoundingInHessianWeightedError() throws {
        let weights = try OuroWeights.load(checkpoint: Fixtures.folder("ouro-trained-s"))
        let hessians = try Hessians.collect(weights: weights, tokens: Self.calibration)
        var totalPlain = 0.0, totalCompensated = 0.0
        for tensor in TensorNaming.expectedTensors(weights.config) where tensor.role == .projection && tensor.ggufName.hasPrefix("blk.2.") {
            let source = try XCTUnwrap(weights.tensor(tensor.ggufName))
            let h = try XCTUnwrap(hessians.byTensor[tensor.ggufName])
            let original = source.floats()
            let factor = ErrorCompensatingRounding.factor(h)
            let importance = try XCTUnwrap(hessians.importance(of: tensor.ggufName))
            for type in [GGMLType.q4_0, .iq4_nl, .q4_K, .q6_K, .iq4_xs, .q5_K, .q3_K] where type.rowByteCount(source.columns) != nil {
                let rowBytes = type.rowByteCount(source.columns)!
                var plain = [UInt8](repeating: 0, count: source.rows * rowBytes), weighted = plain, compensated = plain
                original.withUnsafeBufferPointer { o in
                    for r in 0..<source.rows {
                        plain.withUnsafeMutableBytes { quantizeRow(type, o.baseAddress! + r * source.columns, count: source.columns, into: $0.baseAddress! + r * rowBytes) }
                        weighted.withUnsafeMutableBytes { d in
                            importance.withUnsafeBufferPointer {
                                quantizeRow(type, o.baseAddress! + r * source.columns, count: source.columns, importance: $0.baseAddress!, into: d.baseAddress! + r * rowBytes)
                            }
                        }
                    }
                }
                var scratch = original
                scratch.withUnsafeMutableBufferPointer { s in
                    compensated.withUnsafeMutableBytes { d in
                        ErrorCompensatingRounding.quantize(rows: s.baseAddress!, count: source.rows, columns: source.columns, type: type,
                                                           factor: factor, importance: nil, into: d.baseAddress!)
                    }
                }
                func error(_ bytes: [UInt8]) -> Double {
                    original.withUnsafeBufferPointer { o in
                        bytes.withUnsafeBytes {
                            ErrorCompensatingRounding.weightedError(original: o.baseAddress!, quantized: $0.baseAddress!, rows: source.rows, type: type, hessian: h)
                        }
                    }
                }
                let e = (plain: error(plain), weighted: error(weighted), compensated: error(compensated))
                XCTAssertLessThanOrEqual(e.compensated, e.plain, "\(tensor.ggufName) \(type.name)")
                XCTAssertLessThanOrEqual(e.compensated, e.weighted, "\(tensor.ggufName) \(type.name)")
                totalPlain += e.plain
                totalCompensated += e.compensated
            }
        }
        XCTAssertLessThan(totalCompensated, 0.8 * totalPlain, "error compensation should cut the H-weighted error clearly")
    }
}
