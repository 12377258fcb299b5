import OuroTestSupport
import Quantization
import XCTest
@testable import OuroModel

final class SpeculativeDecodingTests: XCTestCase {
    private let prompt = [3, 141, 59, 26, 35, 97, 9, 32]

    /// Every fixture as its checkpoint (float weights) and as q8_0 / q4_0 GGUF files.
    private func runners() throws -> [(String, OuroRunner)] {
        let folder = try Fixtures.temporaryFolder()
        var result: [(String, OuroRunner)] = []
        for name in Fixtures.all {
            result.append((name, OuroRunner(weights: try OuroWeights.load(checkpoint: Fixtures.folder(name)))))
            for type in [GGMLType.q8_0, .q4_0] {
                let path = folder + "/\(name)-\(type.name).gguf"
                try GGUFBuilder.write(fixture: name, matrixType: type, to: path)
                result.append(("\(name) \(type.name)", OuroRunner(weights: try OuroWeights.load(gguf: path))))
            }
        }
        return result
    }

    /// Greedy decoding of `count` tokens, one append per token or speculating.
    private func decode(_ session: OuroSession, count: Int, speculate: (k: Int, d: Int, minP: Double)?) throws -> (tokens: [Int], logits: [Float]) {
        var sampler = Sampler(SamplingOptions())
        var logits = try session.append(prompt)
        var out: [Int] = []
        while true {
            let next = sampler.next(logits, context: session.tokens)
            out.append(next)
            if out.count == count { return (out, logits) }
            if let speculate {
                let r = try session.appendSpeculating(next, draftTokens: min(speculate.k, count - out.count - 1),
                                                      draftSteps: speculate.d, minDraftProbability: speculate.minP, sampler: &sampler)
                XCTAssertNil(r.next)
                out += r.accepted
                logits = r.logits
            } else {
                logits = try session.append([next])
            }
        }
    }

    private func contents(_ cache: KVCache) -> [UInt8] { cache.storedBytes() }

    func testSpeculativeGreedyIsPlainGreedyAndRollbackLeavesTheCacheAsIfNeverDrafted() throws {
        for (name, runner) in try runners() {
            // Every KV cache type (q8_0 needs head_dim % 32 == 0): a verified row reads the rows
            // before it in the stored type, as decoding them one by one does.
            for type in KVCacheType.allCases where type != .q8_0 || runner.config.headDim % 32 == 0 {
                let kv = KVCacheOptions(type: type)
                let plainSession = try OuroSession(runner: runner, exit: .lastStep, kv: kv)
                let plain = try decode(plainSession, count: 12, speculate: nil)
                // minP: drafting stops at an unlikely draft (1: before the first one, so every round
                // verifies the appended token alone).
                for (k, d, minP) in [(4, 1, 0.0), (3, 2, 0.0), (2, 1, 0.0), (4, 1, 0.2), (3, 2, 1.0)] {
                    let label = "\(name) kv \(type.rawValue) K=\(k) D=\(d) minP=\(minP)"
                    let session = try OuroSession(runner: runner, exit: .lastStep, kv: kv)
                    let speculative = try decode(session, count: 12, speculate: (k, d, minP))
                    XCTAssertEqual(speculative.tokens, plain.tokens, label)
                    XCTAssertEqual(speculative.logits, plain.logits, "\(label): last logits bit for bit")
                    XCTAssertEqual(session.tokens, plainSession.tokens, label)
                    XCTAssertEqual(session.cache.length, plainSession.cache.length)
                    XCTAssertEqual(contents(session.cache), contents(plainSession.cache), "\(label): cache after rollback")
                    if minP == 0 { XCTAssertGreaterThan(session.draftedTokens, 0, label) }
                    if minP == 1 { XCTAssertEqual(session.draftedTokens, 0, label) }
                    XCTAssertLessThanOrEqual(session.acceptedDrafts, session.draftedTokens)
                }
            }
        }
    }

    func testSpeculationUnderSharedKVIsRefused() throws {
        // Under last/mean sharing the next token's first step reads this token's last-step K/V, so
        // one verification pass cannot reproduce decoding: refused, not approximated.
        let runner = OuroRunner(weights: try OuroWeights.load(checkpoint: Fixtures.folder("ouro-tiny-a")))
        for sharing in [KVSharing.last, .mean] {
            let session = try OuroSession(runner: runner, exit: .lastStep, kv: KVCacheOptions(sharing: sharing))
            _ = try session.append(prompt)
            var sampler = Sampler(SamplingOptions())
            XCTAssertThrowsError(try session.appendSpeculating(7, draftTokens: 2, draftSteps: 1, sampler: &sampler)) {
                XCTAssertTrue("\($0)".contains("full K/V sharing"), "\($0)")
            }
            XCTAssertEqual(session.tokens, prompt, "nothing appended")
        }
    }

    func testRejectedDraftsLeaveNoTraceInTheCache() throws {
        // A draft that is always wrong (the full model never picks it) is rolled back entirely.
        let runner = OuroRunner(weights: try OuroWeights.load(checkpoint: Fixtures.folder("ouro-trained-s")))
        let plain = try OuroSession(runner: runner, exit: .lastStep)
        _ = try plain.append(prompt + [7])
        let session = try OuroSession(runner: runner, exit: .lastStep)
        _ = try session.append(prompt)
        var sampler = Sampler(SamplingOptions())
        // Draft with one step, verify with four: whatever was drafted, the cache must end as the plain one.
        let r = try session.appendSpeculating(7, draftTokens: 5, draftSteps: 1, sampler: &sampler)
        let expected = plain.tokens + r.accepted
        let replay = try OuroSession(runner: runner, exit: .lastStep)
        _ = try replay.append(prompt)
        for t in [7] + r.accepted { _ = try replay.append([t]) }
        XCTAssertEqual(session.tokens, expected)
        XCTAssertEqual(contents(session.cache), contents(replay.cache))
    }

    func testSpeculativeSamplingKeepsEachTokensDistribution() throws {
        // With a draft distribution q and a target p, keep-with-min(1, p/q) then residual gives p.
        var sampler = Sampler(SamplingOptions(temperature: 1, seed: 11))
        let p: [(token: Int, probability: Double)] = [(0, 0.5), (1, 0.3), (2, 0.2)]
        let q: [(token: Int, probability: Double)] = [(0, 0.2), (1, 0.2), (2, 0.6)]
        var counts = [0, 0, 0]
        let n = 60_000
        for _ in 0..<n {
            let d = OuroSession.draw(q, &sampler)
            let ratio = p[d].probability / q[d].probability
            let token = sampler.nextUniform() < ratio ? d : OuroSession.drawResidual(p, minus: q, &sampler)
            counts[token] += 1
        }
        for i in 0..<3 {
            XCTAssertEqual(Double(counts[i]) / Double(n), p[i].probability, accuracy: 0.01, "token \(i)")
        }
    }
}
