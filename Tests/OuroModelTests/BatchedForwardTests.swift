import OuroTestSupport
import XCTest
@testable import OuroModel

/// The batched forward (one pass over several sequences' rows, attention per sequence) against each
/// sequence run alone through OuroSession, on the fixtures: the same logits within float noise.
final class BatchedForwardTests: XCTestCase {
    private func check(_ fixture: String) throws {
        let runner = try OuroRunner(weights: OuroWeights.load(checkpoint: Fixtures.folder(fixture)))
        let batch = BatchedForward(runner: runner)
        let prompts = [[3, 141, 59, 26, 17], [9, 32, 335, 8, 77, 21, 5, 90, 11], [40]]
        // Alone: each prompt, then two decoded tokens, through its own session.
        var alone: [[[Float]]] = []
        let next = [[12, 13], [14, 15], [16, 17]]
        for (p, prompt) in prompts.enumerated() {
            let session = try OuroSession(runner: runner, exit: .lastStep)
            alone.append([try session.append(prompt), try session.append([next[p][0]]), try session.append([next[p][1]])])
        }
        // Batched: sequences 0 and 1 prefill together; then 0 and 1
        // decode while 2 prefills in the same pass; then all three decode.
        let sequences = try prompts.map { _ in try batch.makeSequence(exit: .lastStep) }
        var batched = [[[Float]]](repeating: [], count: 3)
        let first = try batch.run([(sequences[0], prompts[0]), (sequences[1], prompts[1])])
        batched[0].append(first[0].logits(.lastStep)); batched[1].append(first[1].logits(.lastStep))
        let second = try batch.run([(sequences[0], [next[0][0]]), (sequences[2], prompts[2]), (sequences[1], [next[1][0]])])
        batched[0].append(second[0].logits(.lastStep)); batched[2].append(second[1].logits(.lastStep)); batched[1].append(second[2].logits(.lastStep))
        let third = try batch.run([(sequences[2], [next[2][0]]), (sequences[1], [next[1][1]]), (sequences[0], [next[0][1]])])
        batched[2].append(third[0].logits(.lastStep)); batched[1].append(third[1].logits(.lastStep)); batched[0].append(third[2].logits(.lastStep))
        batched[2].append(try batch.run([(sequences[2], [next[2][1]])])[0].logits(.lastStep))
        XCTAssertEqual(sequences.map(\.length), [7, 11, 3])
        XCTAssertEqual(batched.map(\.count), [3, 3, 3])
        for s in 0..<3 {
            for k in 0..<min(3, batched[s].count) {
                let scale = alone[s][k].map { abs($0) }.max()!
                XCTAssertGreaterThan(scale, 0)
                XCTAssertLessThan(ReferenceParity.maxAbsDiff(batched[s][k], alone[s][k], "\(fixture) seq \(s) call \(k)"), 1e-3 * scale)
            }
        }
    }

    func testBatchedLogitsEqualPerSequenceLogits() throws {
        for fixture in ["ouro-tiny-b", "ouro-trained-s"] { try check(fixture) }
    }

    func testRefusesDuplicateSequencesAndOverlongRuns() throws {
        let runner = try OuroRunner(weights: OuroWeights.load(checkpoint: Fixtures.folder("ouro-tiny-b")))
        let batch = BatchedForward(runner: runner)
        let sequence = try batch.makeSequence(maxPositions: 4)
        XCTAssertThrowsError(try batch.run([(sequence, [1]), (sequence, [2])]))
        XCTAssertThrowsError(try batch.run([(sequence, [1, 2, 3, 4, 5])]))
        XCTAssertEqual(sequence.length, 0)
    }
}
