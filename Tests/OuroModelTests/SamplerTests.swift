import Foundation
import XCTest
@testable import OuroModel

/// The candidate sets and probabilities each option leaves, computed here from the definitions
/// (transformers' logits processors), and the seeded draw.
final class SamplerTests: XCTestCase {
    /// Probabilities 0.5, 0.3, 0.15, 0.05 at temperature 1, listed out of order to test id order.
    private let logits: [Float] = [log(0.15), log(0.5), log(0.05), log(0.3)]

    private func kept(_ options: SamplingOptions, _ logits: [Float], context: [Int] = []) -> [Int] {
        Sampler(options).probabilities(logits, context: context).map(\.token)
    }

    func testTopKKeepsTheKMostLikelyAndTiesWithTheKth() {
        XCTAssertEqual(kept(SamplingOptions(temperature: 1, topK: 2), logits), [1, 3])
        XCTAssertEqual(kept(SamplingOptions(temperature: 1, topK: 1), logits), [1])
        XCTAssertEqual(kept(SamplingOptions(temperature: 1, topK: 9), logits), [0, 1, 2, 3])
        XCTAssertEqual(kept(SamplingOptions(temperature: 1, topK: 2), [1, 1, 1, 0]), [0, 1, 2])
    }

    func testTopPKeepsTheSmallestSetReachingP() {
        XCTAssertEqual(kept(SamplingOptions(temperature: 1, topP: 0.4), logits), [1])          // 0.5 ≥ 0.4
        XCTAssertEqual(kept(SamplingOptions(temperature: 1, topP: 0.79), logits), [1, 3])      // 0.8 ≥ 0.79
        XCTAssertEqual(kept(SamplingOptions(temperature: 1, topP: 0.85), logits), [0, 1, 3])   // 0.95
        XCTAssertEqual(kept(SamplingOptions(temperature: 1, topP: 0.99), logits), [0, 1, 2, 3])
    }

    func testMinPDropsTokensBelowAFractionOfTheMostLikely() {
        XCTAssertEqual(kept(SamplingOptions(temperature: 1, minP: 0.35), logits), [1, 3])      // ≥ 0.175
        XCTAssertEqual(kept(SamplingOptions(temperature: 1, minP: 0.2), logits), [0, 1, 3])    // ≥ 0.1
        XCTAssertEqual(kept(SamplingOptions(temperature: 1, minP: 1), logits), [1])
    }

    func testFiltersApplyInOrderOnWhatIsLeft() {
        // Alone, top-p 0.83 keeps 0.5, 0.3 (0.8 < 0.83) and 0.15. After top-k 3 the mass is renormalized
        // (0.526, 0.316, 0.158): the first two already reach 0.842, so 0.15 goes.
        XCTAssertEqual(kept(SamplingOptions(temperature: 1, topP: 0.83), logits), [0, 1, 3])
        XCTAssertEqual(kept(SamplingOptions(temperature: 1, topK: 3, topP: 0.83), logits), [1, 3])
        XCTAssertEqual(kept(SamplingOptions(temperature: 1, topK: 3, topP: 0.9, minP: 0.5), logits), [1, 3])
    }

    func testProbabilitiesAreTheTemperatureSoftmaxOfTheKeptTokens() {
        let p = Sampler(SamplingOptions(temperature: 2, topK: 3)).probabilities(logits)
        let w = [0.15, 0.5, 0.3].map { pow($0, 0.5) }     // exp(log(p) / 2)
        let total = w.reduce(0, +)
        XCTAssertEqual(p.map(\.token), [0, 1, 3])
        for (got, want) in zip(p.map(\.probability), w.map { $0 / total }) { XCTAssertEqual(got, want, accuracy: 1e-6) }
    }

    func testRepeatPenaltyDividesPositiveAndMultipliesNegativeLogitsOfContextTokens() {
        let greedy = SamplingOptions(repeatPenalty: 2)
        XCTAssertEqual(kept(greedy, [2, 0.5, 1.5]), [0])
        XCTAssertEqual(kept(greedy, [2, 0.5, 1.5], context: [0, 0]), [2])                     // 2/2 = 1 < 1.5
        XCTAssertEqual(kept(greedy, [-1, -1.5, -1.2], context: [0]), [2])                     // -1·2 = -2
        let p = Sampler(SamplingOptions(temperature: 1, repeatPenalty: 2)).probabilities([2, 2], context: [1])
        XCTAssertEqual(p[0].probability, exp(2) / (exp(2) + exp(1)), accuracy: 1e-9)
    }

    func testTheSameSeedGivesTheSameDrawsAndDrawsFollowTheDistribution() {
        let options = SamplingOptions(temperature: 1, topK: 3, seed: 42)
        var a = Sampler(options), b = Sampler(options)
        var other = Sampler(SamplingOptions(temperature: 1, topK: 3, seed: 43))
        let drawsA = (0..<200).map { _ in a.next(logits) }
        XCTAssertEqual(drawsA, (0..<200).map { _ in b.next(logits) })
        XCTAssertNotEqual(drawsA, (0..<200).map { _ in other.next(logits) })
        XCTAssertFalse(drawsA.contains(2), "top-k 3 never draws the least likely token")

        var sampler = Sampler(SamplingOptions(temperature: 1, seed: 7))
        var counts = [Int](repeating: 0, count: 4)
        let n = 20_000
        for _ in 0..<n { counts[sampler.next(logits)] += 1 }
        for (token, p) in [(0, 0.15), (1, 0.5), (2, 0.05), (3, 0.3)] {
            XCTAssertEqual(Double(counts[token]) / Double(n), p, accuracy: 0.015, "token \(token)")
        }
    }

    func testGreedyIsTheArgmaxAndOptionProblemsNameTheOption() {
        var s = Sampler(SamplingOptions())
        XCTAssertEqual(s.next(logits), 1)
        XCTAssertNil(SamplingOptions(temperature: 0.7, topK: 40, topP: 0.9, minP: 0.05, repeatPenalty: 1.1).problem)
        XCTAssertEqual(SamplingOptions(topP: 0).problem, "top-p must be in (0, 1]")
        XCTAssertEqual(SamplingOptions(minP: 2).problem, "min-p must be in [0, 1]")
        XCTAssertEqual(SamplingOptions(repeatPenalty: 0).problem, "repeat-penalty must be more than 0")
        XCTAssertEqual(SamplingOptions(topK: -1).problem, "top-k must be 0 (off) or more")
    }
}
