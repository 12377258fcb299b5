import XCTest
@testable import OuroModel

/// The forward pass against the PyTorch reference of each fixture, loaded from the checkpoint folder.
final class OuroRunnerParityTests: XCTestCase {
    private func check(_ fixture: String, generation: Bool = true) throws {
        let runner = OuroRunner(weights: try OuroWeights.load(checkpoint: Fixtures.folder(fixture)))
        let parity = try ReferenceParity(fixture: fixture)
        XCTAssertFalse(parity.prompts.isEmpty)
        for prompt in parity.prompts {
            try parity.checkForward(runner, prompt: prompt)
            if generation { try parity.checkGeneration(runner, prompt: prompt) }
        }
    }

    func testTinyAMatchesReferenceEveryStepAndExitMode() throws {
        try check("ouro-tiny-a")
    }

    func testTinyBGroupedQueryShardedMatchesReference() throws {
        try check("ouro-tiny-b")
    }

    func testTrainedSMatchesReference() throws {
        try check("ouro-trained-s")
    }
}
