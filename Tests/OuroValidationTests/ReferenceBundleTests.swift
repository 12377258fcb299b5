import Foundation
import XCTest
@testable import OuroValidation

final class ReferenceBundleTests: XCTestCase {
    /// Prompt count, lengths and axes of every fixture agree with its reference.json and config.json.
    func testReadsAllFixtureBundlesWithShapesFromReferenceJSON() throws {
        for name in TestSupport.fixtureNames {
            let json = try TestSupport.referenceJSON(name)
            let config = json["config"] as! [String: Any]
            let lengths = (json["per_prompt"] as! [[String: Any]]).map { $0["T"] as! Int }
            let bundle = try ReferenceBundle(path: TestSupport.fixture(name, "reference.safetensors"))
            XCTAssertEqual(bundle.prompts.map(\.tokens), lengths, name)
            XCTAssertEqual(bundle.steps, config["total_ut_steps"] as? Int, name)
            XCTAssertEqual(bundle.vocab, config["vocab_size"] as? Int, name)
            XCTAssertEqual(bundle.hidden, config["hidden_size"] as? Int, name)
            XCTAssertFalse(bundle.declaresFormat, "fixtures carry {\"format\":\"pt\"}")
            XCTAssertEqual(bundle.metadata["format"], "pt")
            for p in bundle.prompts {
                XCTAssertEqual(p.thresholds.map(\.key), ["0.5", "0.9"], name)
                XCTAssertEqual(p.exitAtSteps, [1], name)
                XCTAssertTrue(p.hasWeighted && p.hasStepHidden)
                XCTAssertEqual(p.greedyCachedCount, 12)
                XCTAssertEqual(p.hasLabels, name == "ouro-trained-s")
            }
            try bundle.check(against: ModelDimensions(vocab: bundle.vocab, steps: bundle.steps, hidden: bundle.hidden!))
        }
    }

    func testLoadedPromptHoldsReferenceTokensAndGreedyIDs() throws {
        let json = try TestSupport.referenceJSON("ouro-tiny-a")
        let perPrompt = json["per_prompt"] as! [[String: Any]]
        let bundle = try ReferenceBundle(path: TestSupport.fixture("ouro-tiny-a", "reference.safetensors"))
        for (i, layout) in bundle.prompts.enumerated() {
            let p = try bundle.load(layout)
            XCTAssertEqual(p.greedyCached, perPrompt[i]["greedy_cached"] as? [Int])
            XCTAssertEqual(p.greedyUncached, perPrompt[i]["greedy_uncached"] as? [Int])
            XCTAssertEqual(p.inputIDs.count, layout.tokens)
            XCTAssertEqual(p.stepLogits.count, 4 * layout.tokens * 384)
            // reference.json: final logits equal the last step's bitwise for these models.
            XCTAssertEqual(p.finalLogits, Array(p.stepLogits[3 * layout.tokens * 384..<4 * layout.tokens * 384]))
            // exit_pdf rows sum to 1 within float32 rounding.
            for t in 0..<layout.tokens {
                let sum = (0..<4).reduce(0.0) { $0 + Double(p.exitPDF[t * 4 + $1]) }
                XCTAssertEqual(sum, 1, accuracy: 1e-6)
            }
        }
    }

    func testReadsZstdCompressedFixtureLikeThePlainFile() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for name in TestSupport.fixtureNames {
            let plainPath = TestSupport.fixture(name, "reference.safetensors")
            let raw = [UInt8](try Data(contentsOf: URL(fileURLWithPath: plainPath)))
            let zst = dir.appendingPathComponent("\(name).safetensors.zst")
            try TestSupport.write(TestSupport.zstdCompress(raw), to: zst)
            let plain = try ReferenceBundle(path: plainPath)
            let packed = try ReferenceBundle(path: zst.path)
            XCTAssertEqual(packed.prompts, plain.prompts)
            let last = plain.prompts.last!
            XCTAssertEqual(try packed.load(last).stepLogits, try plain.load(last).stepLogits)
        }
    }

    func testRejectsTruncatedZstdNamingTheFile() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let packed = TestSupport.zstdCompress(TestSupport.smallBundle())
        let path = dir.appendingPathComponent("cut.safetensors.zst")
        try TestSupport.write(Array(packed[0..<(packed.count / 2)]), to: path)
        let error = TestSupport.failure { _ = try ReferenceBundle(path: path.path) }
        XCTAssertEqual(error, .truncatedCompressedData(path: path.path))
        XCTAssertEqual(error?.description, "\(path.path): zstd data is truncated (input ends inside a frame)")
    }

    func testRejectsCorruptZstdNamingTheFile() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        var packed = TestSupport.zstdCompress(TestSupport.smallBundle())
        // Keep the magic, break the frame header descriptor's reserved bit and the block header.
        packed[4] |= 0x08
        for i in 6..<min(packed.count, 12) { packed[i] = 0xFF }
        let path = dir.appendingPathComponent("bad.safetensors.zst")
        try TestSupport.write(packed, to: path)
        guard case .corruptCompressedData(let p, _)? = TestSupport.failure({ _ = try ReferenceBundle(path: path.path) }) else {
            return XCTFail("expected corruptCompressedData")
        }
        XCTAssertEqual(p, path.path)
    }

    func testRejectsDecompressedSizeOverTheLimit() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let raw = TestSupport.smallBundle()
        let path = dir.appendingPathComponent("b.safetensors.zst")
        try TestSupport.write(TestSupport.zstdCompress(raw), to: path)
        let error = TestSupport.failure { _ = try ReferenceBundle(path: path.path, decompressedLimit: 100) }
        XCTAssertEqual(error, .decompressedTooLarge(path: path.path, size: UInt64(raw.count), limit: 100))
    }

    func testAcceptsOwnMetadataAndRejectsUnknownVersion() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let good = dir.appendingPathComponent("good.safetensors")
        try TestSupport.write(TestSupport.smallBundle(), to: good)
        let bundle = try ReferenceBundle(path: good.path)
        XCTAssertTrue(bundle.declaresFormat)
        XCTAssertEqual(bundle.prompts.first?.thresholds, [ThresholdKey(key: "0.5", value: 0.5)])

        let v2 = dir.appendingPathComponent("v2.safetensors")
        try TestSupport.write(TestSupport.smallBundle(metadata: ["format": "ouro-reference", "format_version": "2"]), to: v2)
        XCTAssertEqual(TestSupport.failure { _ = try ReferenceBundle(path: v2.path) },
                       .unsupportedFormatVersion(path: v2.path, version: "2"))
    }

    func testRejectsShapeDisagreementNamingTensorAndShapes() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("b.safetensors")
        try TestSupport.write(TestSupport.smallBundle(replacing: [.f32("p0.exit_pdf", [2, 3])]), to: path)
        let error = TestSupport.failure { _ = try ReferenceBundle(path: path.path) }
        XCTAssertEqual(error, .shapeMismatch(path: path.path, name: "p0.exit_pdf", shape: [2, 3], expected: "[T=3, S=2]"))
        XCTAssertEqual(error?.description, "\(path.path): tensor 'p0.exit_pdf' has shape [2, 3]; expected [T=3, S=2]")
    }

    func testRejectsBundleThatDisagreesWithModelConfig() throws {
        let bundle = try ReferenceBundle(path: TestSupport.fixture("ouro-tiny-a", "reference.safetensors"))
        let error = TestSupport.failure { try bundle.check(against: ModelDimensions(vocab: 384, steps: 3, hidden: 64)) }
        guard case .shapeMismatch(_, "p0.step_logits", [4, 17, 384], let expected)? = error else {
            return XCTFail("got \(String(describing: error))")
        }
        XCTAssertTrue(expected.contains("3 loop steps"), expected)
        let hidden = TestSupport.failure { try bundle.check(against: ModelDimensions(vocab: 384, steps: 4, hidden: 32)) }
        guard case .shapeMismatch(_, "p0.step_hidden", [4, 17, 64], _)? = hidden else {
            return XCTFail("got \(String(describing: hidden))")
        }
    }

    func testRejectsMissingRequiredTensor() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("b.safetensors")
        try TestSupport.write(TestSupport.smallBundle(dropping: ["p0.gate_logits"]), to: path)
        XCTAssertEqual(TestSupport.failure { _ = try ReferenceBundle(path: path.path) },
                       .missingTensor(path: path.path, name: "p0.gate_logits"))
    }

    func testRejectsExitStepOutsideLoopSteps() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("b.safetensors")
        try TestSupport.write(TestSupport.smallBundle(replacing: [.i64("p0.threshold_0.5.exit_steps", [0, 2, 1])]), to: path)
        XCTAssertEqual(TestSupport.failure { _ = try ReferenceBundle(path: path.path) },
                       .valueOutOfRange(path: path.path, name: "p0.threshold_0.5.exit_steps", value: 2, range: "0..<2"))
    }

    func testRejectsTokenIDOutsideVocabulary() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("b.safetensors")
        try TestSupport.write(TestSupport.smallBundle(replacing: [.i64("p0.input_ids", [1, 5, 3])]), to: path)
        XCTAssertEqual(TestSupport.failure { _ = try ReferenceBundle(path: path.path) },
                       .valueOutOfRange(path: path.path, name: "p0.input_ids", value: 5, range: "0..<5"))
    }

    func testRejectsFileWithoutPrompts() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("b.safetensors")
        try TestSupport.write(TestSupport.safetensors([.f32("x", [2])]), to: path)
        XCTAssertEqual(TestSupport.failure { _ = try ReferenceBundle(path: path.path) }, .noPrompts(path: path.path))
    }

    func testRejectsMalformedThresholdName() throws {
        let dir = try TestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("b.safetensors")
        try TestSupport.write(TestSupport.smallBundle(replacing: [.f32("p0.threshold_high.logits", [3, 5])]), to: path)
        XCTAssertEqual(TestSupport.failure { _ = try ReferenceBundle(path: path.path) },
                       .malformedTensorName(path: path.path, name: "p0.threshold_high.logits"))
    }
}
