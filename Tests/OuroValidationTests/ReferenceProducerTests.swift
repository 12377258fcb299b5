import Foundation
import OuroConversion
import OuroModel
import SafeTensors
import XCTest
@testable import OuroValidation

/// `ReferenceProducer` (our runtime as the reference) against the PyTorch bundle of the trained
/// fixture, and the written bundle read back.
final class ReferenceProducerTests: XCTestCase {
    nonisolated(unsafe) private static var folder = ""
    /// Our bundle of the fixture's four prompts, written once through ReferenceBundleWriter (zstd).
    nonisolated(unsafe) private static var ours = ""

    override class func setUp() {
        super.setUp()
        folder = (try? TestSupport.temporaryDirectory().path) ?? NSTemporaryDirectory()
        ours = folder + "/ours.safetensors.zst"
    }

    override class func tearDown() {
        try? FileManager.default.removeItem(atPath: folder)
        super.tearDown()
    }

    private func pytorchBundle() throws -> ReferenceBundle {
        try ReferenceBundle(path: TestSupport.fixture("ouro-trained-s", "reference.safetensors"))
    }

    /// Writes our bundle for the PyTorch bundle's prompts (greedy tokens only for the two short
    /// prompts: uncached greedy reruns the whole prompt per token).
    private func writeOurs() throws -> ReferenceBundle {
        if FileManager.default.fileExists(atPath: Self.ours) { return try ReferenceBundle(path: Self.ours) }
        let torch = try pytorchBundle()
        let weights = try OuroWeights.load(checkpoint: TestSupport.fixture("ouro-trained-s"))
        let inputs = try torch.prompts.map { layout -> ReferenceInput in
            let ref = try torch.load(layout)
            return ReferenceInput(tokens: ref.inputIDs, labels: ref.labels)
        }
        let withGreedy = ReferenceProducer(weights: weights, contents: ReferenceContents())
        let noGreedy = ReferenceProducer(weights: weights, contents: ReferenceContents(greedyTokens: 0))
        let producer = { (n: Int) in n < 2 ? withGreedy : noGreedy }
        let layouts = inputs.enumerated().map { producer($0).layout(index: $0, input: $1) }
        let writer = try ReferenceBundleWriter(destination: Self.ours, layouts: layouts, steps: 4, vocab: 384, hidden: 256,
                                               metadata: ["format": "ouro-reference", "format_version": "1", "tool": "test"],
                                               compressionLevel: 3)
        for (n, input) in inputs.enumerated() { try writer.append(try producer(n).produce(index: n, input: input)) }
        try writer.finish()
        return try ReferenceBundle(path: Self.ours)
    }

    func testOurReferenceReproducesThePyTorchBundle() throws {
        let torch = try pytorchBundle()
        let ours = try writeOurs()
        XCTAssertTrue(ours.declaresFormat)
        XCTAssertEqual(ours.metadata["tool"], "test")
        XCTAssertEqual(ours.prompts.count, torch.prompts.count)
        var greedyCompared = 0
        for (a, b) in zip(torch.prompts, ours.prompts) {
            let t = try torch.load(a), o = try ours.load(b)
            XCTAssertEqual(o.inputIDs, t.inputIDs)
            XCTAssertEqual(o.labels, t.labels)
            XCTAssertLessThanOrEqual(ParityMetrics.maxAbsError(o.stepLogits, t.stepLogits), 1e-3, "p\(a.index) step logits")
            XCTAssertLessThanOrEqual(ParityMetrics.maxAbsError(o.finalLogits, t.finalLogits), 1e-3)
            XCTAssertLessThanOrEqual(ParityMetrics.maxAbsError(try XCTUnwrap(o.weightedLogits), try XCTUnwrap(t.weightedLogits)), 1e-3)
            XCTAssertLessThanOrEqual(ParityMetrics.maxAbsError(o.exitPDF, t.exitPDF), 1e-4, "p\(a.index) exit pdf")
            XCTAssertLessThanOrEqual(ParityMetrics.maxAbsError(o.gateLogits, t.gateLogits), 1e-3)
            XCTAssertLessThanOrEqual(ParityMetrics.maxAbsError(try XCTUnwrap(o.stepHidden), try XCTUnwrap(t.stepHidden)), 1e-3)
            XCTAssertEqual(o.thresholds.map(\.key), t.thresholds.map(\.key))
            for (x, y) in zip(o.thresholds, t.thresholds) {
                XCTAssertEqual(x.exitSteps, y.exitSteps, "threshold \(x.key) exit steps")
                XCTAssertLessThanOrEqual(ParityMetrics.maxAbsError(x.logits, y.logits), 1e-3)
            }
            XCTAssertEqual(o.exitAtStep.map(\.step), t.exitAtStep.map(\.step))
            for (x, y) in zip(o.exitAtStep, t.exitAtStep) { XCTAssertLessThanOrEqual(ParityMetrics.maxAbsError(x.logits, y.logits), 1e-3) }
            if let cached = o.greedyCached {
                XCTAssertEqual(cached, t.greedyCached)
                XCTAssertEqual(o.greedyUncached, t.greedyUncached)
                greedyCompared += 1
            }
        }
        XCTAssertEqual(greedyCompared, 2)
    }

    /// Our bundle is as good a yardstick as PyTorch's: a Q4_0 file's mean KLD agrees within 2 %.
    func testQ4_0MeanKLDIsTheSameAgainstEitherBundle() throws {
        let ours = try writeOurs()
        let path = Self.folder + "/q4_0.gguf"
        _ = try Converter(checkpoint: TestSupport.fixture("ouro-trained-s"), type: .q4_0).convert(to: path)
        let weights = try OuroWeights.load(gguf: path)
        let againstTorch = try Validator(weights: weights).validate(bundle: try pytorchBundle())
        let againstOurs = try Validator(weights: weights).validate(bundle: ours)
        let a = againstTorch.final.kldMean, b = againstOurs.final.kldMean
        XCTAssertGreaterThan(a, 1e-4, "Q4_0 must be measurably off")
        XCTAssertEqual(b, a, accuracy: 0.02 * a)
        XCTAssertEqual(againstOurs.final.top1Agreement, againstTorch.final.top1Agreement, accuracy: 0.01)
        XCTAssertEqual(againstOurs.perplexity?.tokens, againstTorch.perplexity?.tokens)
    }

    /// The writer's F16 option: logits rounded to half precision, everything else as F32.
    func testF16BundleKeepsLogitsWithinHalfPrecision() throws {
        let weights = try OuroWeights.load(checkpoint: TestSupport.fixture("ouro-trained-s"))
        let producer = ReferenceProducer(weights: weights, contents: .logitsOnly)
        let input = ReferenceInput(tokens: Array(3..<40))
        let prompt = try producer.produce(index: 0, input: input)
        let path = Self.folder + "/f16.safetensors"
        let writer = try ReferenceBundleWriter(destination: path, layouts: [prompt.layout], steps: 4, vocab: 384, hidden: nil,
                                               metadata: [:], logitType: .f16)
        try writer.append(prompt)
        try writer.finish()
        let file = try SafeTensorsFile(path: path)
        XCTAssertEqual(file.info("p0.step_logits")?.dtype, .f16)
        XCTAssertEqual(file.info("p0.exit_pdf")?.dtype, .f32)
        XCTAssertNil(file.info("p0.step_hidden"))
        let read = try ReferenceBundle(path: path).load(try ReferenceBundle(path: path).prompts[0])
        for (x, y) in zip(read.stepLogits, prompt.stepLogits) {
            XCTAssertLessThanOrEqual(abs(x - y), abs(y) * 0x1p-11 + 1e-7)
        }
        XCTAssertEqual(read.exitPDF, prompt.exitPDF)
    }

    func testTextWindowsScoreTheSecondHalfAsLlamaPerplexity() {
        let tokens = Array(100..<125)   // 25 tokens: two windows of 10, 5 left over
        let windows = TextWindows.cut(tokens, context: 10, chunks: nil)
        XCTAssertEqual(windows.map(\.tokens), [Array(100..<110), Array(110..<120)])
        XCTAssertEqual(windows[1].labels, [-100, -100, -100, -100, -100, 116, 117, 118, 119, -100])
        XCTAssertEqual(TextWindows.cut(tokens, context: 10, chunks: 1).count, 1)
        XCTAssertEqual(TextWindows.cut(tokens, context: 30, chunks: nil).count, 0)
    }

    func testStatisticsFollowLlamaPerplexityDefinitions() {
        var c = LogitComparison()
        // Two positions, vocab 2: identical rows (KL 0, same argmax), then softmax([1,0]) against
        // softmax([0,1]) whose KL is (2σ(1) − 1)·log(σ(1)/(1 − σ(1))) = 2σ(1) − 1, argmax differing.
        let kl = c.add(model: [0, 0, 0, 1], reference: [0, 0, 1, 0], tokens: 2, vocab: 2)
        let expected = 2 / (1 + exp(-1.0)) - 1
        XCTAssertEqual(kl[0], 0, accuracy: 1e-12)
        XCTAssertEqual(kl[1], expected, accuracy: 1e-12)
        let s = c.summary
        XCTAssertEqual(s.kldMean, expected / 2, accuracy: 1e-12)
        // sqrt((E[x²] − mean²) / (n − 1)) with n = 2: sqrt(x²/2 − x²/4) = x/2.
        XCTAssertEqual(try XCTUnwrap(s.kldMeanStderr), expected / 2, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(s.kldMedian), expected / 2, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(s.kldP90), expected, accuracy: 1e-12)
        XCTAssertEqual(s.top1Agreement, 0.5)
        // sqrt(p(1 − p) / (n − 1)) = 0.5.
        XCTAssertEqual(try XCTUnwrap(s.top1AgreementStderr), 0.5, accuracy: 1e-12)
    }
}
