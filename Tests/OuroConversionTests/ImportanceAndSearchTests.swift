import Foundation
import OuroModel
import OuroTestSupport
import Quantization
import XCTest
@testable import OuroConversion

/// imatrix collection, calibration, and the loop-aware sensitivity search on the tiny fixture.
final class ImportanceAndSearchTests: XCTestCase {
    private let tokens = [0, 17, 99, 5, 250, 3, 3, 41, 120, 7, 300, 64, 2, 88, 19, 200]

    private func tinyWeights() throws -> OuroWeights {
        try OuroWeights.load(checkpoint: Fixtures.folder("ouro-tiny-a"))
    }

    /// The output head's input is each step's normed state, which the forward pass returns: its
    /// imatrix must be mean(x²) over every step and position of `stepHidden`.
    func testOutputImportanceIsMeanSquareOfStepStates() throws {
        let weights = try tinyWeights()
        let matrix = try ImportanceMatrix.collect(weights: weights, tokens: tokens)
        let out = try OuroRunner(weights: weights).forward(tokens: tokens)
        let h = out.hidden
        var expected = [Double](repeating: 0, count: h)
        for step in out.stepHidden { for t in 0..<out.tokens { for c in 0..<h { expected[c] += Double(step[t * h + c] * step[t * h + c]) } } }
        let rows = Double(out.steps * out.tokens)
        let got = try XCTUnwrap(matrix.values["output.weight"])
        XCTAssertEqual(got.count, h)
        for c in 0..<h { XCTAssertEqual(Double(got[c]), expected[c] / rows, accuracy: 1e-6 * max(1, expected[c] / rows)) }
        XCTAssertEqual(matrix.tokens, tokens.count)
    }

    /// Every projection gets one value per input column; projections sharing an input share values;
    /// windows split the tokens but every row counts once.
    func testEveryProjectionHasImportanceAndSharedInputsAgree() throws {
        let weights = try tinyWeights()
        let whole = try ImportanceMatrix.collect(weights: weights, tokens: tokens)
        for tensor in TensorNaming.expectedTensors(weights.config) where tensor.role == .projection {
            XCTAssertEqual(whole.values[tensor.ggufName]?.count, tensor.shape[1], tensor.ggufName)
            XCTAssertTrue(whole.values[tensor.ggufName]!.allSatisfy { $0 > 0 }, tensor.ggufName)
        }
        XCTAssertEqual(whole.values["blk.1.attn_q.weight"], whole.values["blk.1.attn_v.weight"])
        XCTAssertEqual(whole.values["blk.0.ffn_gate.weight"], whole.values["blk.0.ffn_up.weight"])
        XCTAssertNotEqual(whole.values["blk.0.ffn_up.weight"], whole.values["blk.1.ffn_up.weight"])
        // Two windows of 8: the second window restarts the context, so values differ a little, but
        // the mean over 16 rows per step and layer stays of the same size.
        let split = try ImportanceMatrix.collect(weights: weights, tokens: tokens, window: 8)
        let a = whole.values["blk.0.attn_q.weight"]!, b = split.values["blk.0.attn_q.weight"]!
        XCTAssertEqual(Double(a.reduce(0, +)), Double(b.reduce(0, +)), accuracy: 0.5 * Double(a.reduce(0, +)))
    }

    /// The observer sees steps x layers calls per site, each with the forward's token rows.
    func testObserverSeesEveryLoopStepAndLayer() throws {
        final class Counter: ActivationObserver {
            var calls: [String: Int] = [:]
            func observe(_ site: LinearInput, layer: Int?, rows: UnsafePointer<Float>, count: Int, columns: Int) {
                calls["\(site)", default: 0] += count
            }
        }
        let weights = try tinyWeights()
        let runner = OuroRunner(weights: weights)
        let counter = Counter()
        runner.activationObserver = counter
        _ = try runner.forward(tokens: tokens)
        let c = weights.config
        XCTAssertEqual(counter.calls["attentionInput"], c.loopCount * c.layerCount * tokens.count)
        XCTAssertEqual(counter.calls["ffnDownInput"], c.loopCount * c.layerCount * tokens.count)
        XCTAssertEqual(counter.calls["output"], c.loopCount * tokens.count)
    }

    func testSelfSampledCalibrationIsSeededAndStartsAtBos() throws {
        let weights = try tinyWeights()
        let a = try Calibration.sample(weights: weights, sequences: 2, length: 6, seed: 7)
        let b = try Calibration.sample(weights: weights, sequences: 2, length: 6, seed: 7)
        let c = try Calibration.sample(weights: weights, sequences: 2, length: 6, seed: 8)
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(a, c)
        XCTAssertEqual(a.count, 12)
        XCTAssertEqual(a[0], weights.config.bosTokenID ?? 0)
        XCTAssertEqual(a[6], weights.config.bosTokenID ?? 0)
    }

    func testCalibrationFileParsingAndErrors() throws {
        let folder = try Fixtures.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try "1, 2,3\n4\t5".write(toFile: folder + "/ok.txt", atomically: true, encoding: .utf8)
        XCTAssertEqual(try Calibration.load(path: folder + "/ok.txt", vocab: 10), [1, 2, 3, 4, 5])
        try "1,2,x".write(toFile: folder + "/bad.txt", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try Calibration.load(path: folder + "/bad.txt", vocab: 10)) {
            XCTAssertEqual("\($0)", folder + "/bad.txt: 'x' is not a token id below 10")
        }
        XCTAssertThrowsError(try Calibration.load(path: folder + "/ok.txt", vocab: 5))
    }

    /// The search on a small budget: every quantizable tensor measured per candidate, Q8_0 hurts less
    /// than Q4_0 through the loop, and the allocation respects the budget at both ends.
    func testSearchMeasuresAndAllocatesUnderBudget() throws {
        let weights = try tinyWeights()
        var search = SensitivitySearch(candidates: [.q4_0, .q8_0])
        search.window = 16
        let measurements = try search.measure(weights: weights, tokens: tokens)
        let quantizable = TensorNaming.expectedTensors(weights.config).filter(\.isQuantizable)
        XCTAssertEqual(measurements.count, quantizable.count * 2)
        let byTensor = Dictionary(grouping: measurements, by: \.tensor)
        var q8Better = 0
        for (_, pair) in byTensor {
            let q4 = pair.first { $0.type == .q4_0 }!, q8 = pair.first { $0.type == .q8_0 }!
            XCTAssertEqual(q4.stepKLD.count, weights.config.loopCount)
            XCTAssertGreaterThan(q4.finalKLD, 0)
            if q8.finalKLD < q4.finalKLD { q8Better += 1 }
        }
        XCTAssertEqual(q8Better, byTensor.count)
        let elements = Dictionary(uniqueKeysWithValues: quantizable.map { ($0.ggufName, $0.elementCount) })
        let low = SensitivitySearch.allocate(measurements, elements: elements, budget: 4.5)
        XCTAssertEqual(low.bitsPerWeight, 4.5)
        XCTAssertTrue(low.recipe.overrides.values.allSatisfy { $0 == .q4_0 })
        let high = SensitivitySearch.allocate(measurements, elements: elements, budget: 8.5)
        XCTAssertTrue(high.recipe.overrides.values.allSatisfy { $0 == .q8_0 })
        let mid = SensitivitySearch.allocate(measurements, elements: elements, budget: 5.5)
        XCTAssertLessThanOrEqual(mid.bitsPerWeight, 5.5)
        XCTAssertGreaterThan(mid.bitsPerWeight, 5.0)
        XCTAssertLessThan(mid.predictedKLD, low.predictedKLD)
        XCTAssertGreaterThan(mid.predictedKLD, high.predictedKLD)
    }

    /// On a small synthetic case the greedy allocation equals the brute-force optimum.
    func testAllocationMatchesBruteForceOnSmallCase() {
        typealias M = SensitivitySearch.Measurement
        let kld: [String: [Double]] = ["a": [8, 3, 1], "b": [4, 1, 0.5], "c": [2, 1.5, 1.2]]
        let bits = [450, 650, 850]
        var ms: [M] = []
        for (t, values) in kld { for k in 0..<3 { ms.append(M(tensor: t, type: [GGMLType.q4_0, .q6_K, .q8_0][k], bits: bits[k], stepKLD: [values[k]])) } }
        let elements = ["a": 100, "b": 100, "c": 100]
        for budget in [4.5, 5.2, 5.5, 6.0, 7.0, 8.5] {
            let result = SensitivitySearch.allocate(ms, elements: elements, budget: budget)
            var best = Double.infinity
            for i in 0..<3 { for j in 0..<3 { for k in 0..<3 where bits[i] + bits[j] + bits[k] <= Int(budget * 300) {
                best = min(best, kld["a"]![i] + kld["b"]![j] + kld["c"]![k])
            } } }
            XCTAssertEqual(result.predictedKLD, best, accuracy: 1e-12, "budget \(budget)")
        }
    }
}
