import Foundation
import OuroModel
import OuroTestSupport
import Quantization
import XCTest
@testable import OuroConversion

/// The loop preset's allocation: the uniform base nearest the budget, forced downgrades by least loss
/// per bit, upgrades only beyond the noise.
final class UniformStartSearchTests: XCTestCase {
    /// Per-position KLDs: `mean` plus a deterministic ±`spread` zig-zag.
    private func kld(_ mean: Float, spread: Float = 0, count: Int = 400) -> [Float] {
        (0..<count).map { mean + (($0 % 2 == 0) ? spread : -spread) }
    }

    func testUpgradesOnlyBeyondTheMarginAndWithinTheBudget() {
        typealias Move = UniformStartSearch.Move
        let base = kld(2e-3, spread: 1e-3)
        // A: a larger mean gain, but its per-position difference swings ±4e-3 (se 2e-4: 1.5 se).
        let noisy = zip(base, kld(1.7e-3, spread: 0)).enumerated().map { i, pair in pair.1 + (i % 4 < 2 ? 4e-3 : -4e-3) + (pair.0 - 2e-3) }
        let moves = [
            Move(tensor: "A", type: .q8_0, bits: 150, kld: noisy),
            // B: a smaller but consistent gain (the difference is constant: se 0).
            Move(tensor: "B", type: .q5_K, bits: 140, kld: base.map { $0 - 2e-4 }),
            // C: consistent and large, but over the budget.
            Move(tensor: "C", type: .q8_0, bits: 300, kld: base.map { $0 - 1e-3 }),
        ]
        let chosen = UniformStartSearch.choose(base: .q4_K, baseKLD: base, baseBits: ["A": 100, "B": 100, "C": 100],
                                               moves: moves, limit: 360, margin: 3)
        XCTAssertEqual(chosen.types, ["A": .q4_K, "B": .q5_K, "C": .q4_K])
        XCTAssertEqual(chosen.bits, 340)
        XCTAssertEqual(chosen.taken.map(\.tensor), ["B"])
        // With no margin and room for both, the noisy mean gain (more per bit than B's) is taken too.
        let loose = UniformStartSearch.choose(base: .q4_K, baseKLD: base, baseBits: ["A": 100, "B": 100, "C": 100],
                                              moves: moves, limit: 400, margin: 0)
        XCTAssertEqual(loose.types["A"], .q8_0)
    }

    func testDowngradesTheLeastLossPerBitSavedUntilItFits() {
        typealias Move = UniformStartSearch.Move
        let base = kld(1e-3)
        let moves = [
            Move(tensor: "A", type: .q3_K, bits: 70, kld: base.map { $0 + 3e-4 }),   // 1e-5 per bit saved
            Move(tensor: "B", type: .q3_K, bits: 70, kld: base.map { $0 + 6e-5 }),   // 2e-6 per bit saved
            Move(tensor: "C", type: .q3_K, bits: 80, kld: base.map { $0 + 1e-4 }),   // 5e-6 per bit saved
        ]
        let chosen = UniformStartSearch.choose(base: .iq4_xs, baseKLD: base, baseBits: ["A": 100, "B": 100, "C": 100],
                                               moves: moves, limit: 255, margin: 3)
        XCTAssertEqual(chosen.taken.map(\.tensor), ["B", "C"])
        XCTAssertEqual(chosen.bits, 250)
        XCTAssertEqual(chosen.types["A"], .iq4_xs)
    }

    /// On the trained fixture (ffn_down rows of 704 fall back to IQ4_NL or Q8_0) the sizes are those
    /// of the uniform rows in Docs/QUANTIZATION.md: Q3_K 3.66, IQ4_XS 4.30, Q4_K 4.50, Q5_K 6.13.
    func testTheBaseIsTheUniformTypeNearestTheBudget() throws {
        let config = try OuroConfiguration.load(folder: Fixtures.folder("ouro-trained-s"))
        let search = UniformStartSearch()
        XCTAssertEqual(search.base(for: 4.5, config: config), .iq4_nl)
        XCTAssertEqual(search.base(for: 4.25, config: config), .iq4_xs)
        XCTAssertEqual(search.base(for: 3.5, config: config), .q3_K)
        // 5.0 is as far from Q4_K as from IQ4_NL (both 4.5 here); with bits to spend the tie goes to
        // `upgradeBase`, Q4_K. Without it, to the later base.
        XCTAssertEqual(search.base(for: 5.0, config: config), .q4_K)
        var noPreference = search
        noPreference.upgradeBase = nil
        XCTAssertEqual(noPreference.base(for: 5.0, config: config), .iq4_nl)
        XCTAssertEqual(noPreference.base(for: 4.5, config: config), .iq4_nl)
        XCTAssertEqual(search.base(for: 6.0, config: config), .q5_K)
    }

    /// The moves measured at 5.0 bpw on the trained fixture (h 256, ffn 704, vocab 384, 4 layers), by
    /// hand: 3,407,872 quantized elements, base IQ4_NL (4.5 bpw, as Q4_K with ffn_down falling back), so
    /// 1,703,936 bits are left; a move is measured only if it fits them. Upgrades add 1, 2.0625 and 4
    /// bits per element (Q5_K, Q6_K, Q8_0; ffn_down's Q5_K and Q6_K fall back to Q8_0).
    /// - token_embd, output (98,304 each): all 3 fit -> 6.
    /// - Whole roles: attn_q/k/v/output (4 x 65,536 = 262,144): all 3 fit -> 12; ffn_gate/up
    ///   (4 x 180,224 = 720,896): Q5_K (+720,896) and Q6_K (+1,486,848) fit, Q8_0 (+2,883,584) does not -> 4;
    ///   ffn_down: only Q8_0 (+2,883,584), too dear -> 0. Total 22.
    /// - Single tensors: 6 + 16 attention tensors x 3 + 8 gate/up x 3 + 4 ffn_down x 1 (+720,896) = 82.
    func testWholeRoleUpgradesAreMeasuredOncePerRoleWithinTheBudget() throws {
        let config = try OuroConfiguration.load(folder: Fixtures.folder("ouro-trained-s"))
        var search = UniformStartSearch()
        XCTAssertEqual(search.measuredMoves(for: 5.0, config: config), 22)
        XCTAssertEqual(search.unit("blk.3.ffn_up.weight"), "blk.*.ffn_up.weight")
        XCTAssertEqual(search.unit("output.weight"), "output.weight")
        // Downgrades stay per tensor (a role's worth would overshoot the bits to save): at 4.25 from
        // IQ4_XS, every tensor but ffn_down (IQ4_NL, which Q3_K also falls back to) has one cheaper
        // move, Q3_K: 2 + 16 + 8 = 26.
        XCTAssertEqual(search.measuredMoves(for: 4.25, config: config), 26)
        search.movesWholeRoles = false
        XCTAssertEqual(search.measuredMoves(for: 5.0, config: config), 82)
        XCTAssertEqual(search.unit("blk.3.ffn_up.weight"), "blk.3.ffn_up.weight")
    }

    /// A whole-role upgrade is chosen as one unit and written to every layer's tensor of that role.
    func testAChosenRoleIsWrittenToEveryLayer() {
        typealias Move = UniformStartSearch.Move
        let base = kld(1e-3)
        let upRole = ["blk.0.ffn_up.weight", "blk.1.ffn_up.weight"]
        let moves = [
            Move(tensor: "blk.*.ffn_up.weight", type: .q5_K, bits: 220, kld: base.map { $0 - 2e-4 }, members: upRole),
            Move(tensor: "output.weight", type: .q6_K, bits: 130, kld: base.map { $0 - 1e-5 }),
        ]
        // Room for the role (+20 bits) but not for both (+50).
        let chosen = UniformStartSearch.choose(base: .q4_K, baseKLD: base, baseBits: ["blk.*.ffn_up.weight": 200, "output.weight": 100],
                                               moves: moves, limit: 320, margin: 3)
        XCTAssertEqual(chosen.bits, 320)
        let overrides = UniformStartSearch.overrides(chosen.types, base: .q4_K, members: ["blk.*.ffn_up.weight": upRole])
        XCTAssertEqual(overrides, ["blk.0.ffn_up.weight": .q5_K, "blk.1.ffn_up.weight": .q5_K])
    }

    /// The second phase: after no move clears the margin on the final step, the bits left go to moves
    /// that cut the compounding error (final step - step 1) beyond `growthMargin` standard errors.
    func testTheBitsLeftGoToMovesThatCutTheCompoundingError() {
        typealias Move = UniformStartSearch.Move
        let first = kld(1e-3), last = kld(2e-3)
        // ±2e-3 that a move's step 1 and final step share (the same positions are hard at every step).
        let shared = (0..<400).map { Float(($0 / 2) % 2 == 0 ? 2e-3 : -2e-3) }
        func steps(_ s1: [Float], _ s4: [Float]) -> [[Float]] { [s1, s4] }
        let moves = [
            // E: a step-constant cut (every step -5e-4): clears the final-step margin, no compounding gain.
            Move(tensor: "E", type: .q8_0, bits: 150, kld: last.map { $0 - 5e-4 },
                 steps: steps(first.map { $0 - 5e-4 }, last.map { $0 - 5e-4 })),
            // R: cuts the final step by 1e-4 under shared noise (final-step z = 1) and step 1 not at all:
            // its compounding cut is exact.
            Move(tensor: "R", type: .q5_K, bits: 120, kld: zip(last, shared).map { $0 - 1e-4 + $1 },
                 steps: steps(zip(first, shared).map { $0 + $1 }, zip(last, shared).map { $0 - 1e-4 + $1 })),
            // U: a larger compounding cut, but it raises step 1 by more: the final step gets worse.
            Move(tensor: "U", type: .q6_K, bits: 110, kld: last.map { $0 + 1e-4 },
                 steps: steps(first.map { $0 + 6e-4 }, last.map { $0 + 1e-4 })),
        ]
        let bits = ["E": 100, "R": 100, "U": 100]
        let finalOnly = UniformStartSearch.choose(base: .q4_K, baseKLD: last, baseSteps: [first, last], baseBits: bits,
                                                  moves: moves, limit: 400, margin: 3)
        XCTAssertEqual(finalOnly.taken.map(\.tensor), ["E"])
        let twoPhase = UniformStartSearch.choose(base: .q4_K, baseKLD: last, baseSteps: [first, last], baseBits: bits,
                                                 moves: moves, limit: 400, margin: 3, growthMargin: 2)
        XCTAssertEqual(twoPhase.taken.map(\.tensor), ["E", "R"])
        XCTAssertEqual(twoPhase.types["U"], .q4_K)
        XCTAssertEqual(twoPhase.bits, 370)
        // The second phase keeps to the budget too.
        let tight = UniformStartSearch.choose(base: .q4_K, baseKLD: last, baseSteps: [first, last], baseBits: bits,
                                              moves: moves, limit: 360, margin: 3, growthMargin: 2)
        XCTAssertEqual(tight.taken.map(\.tensor), ["E"])
    }

    /// The growth cap: per-step gains in, choices out. Base: step 1 1e-3, final 1.5e-3 (growth 1.5x),
    /// so a cap of 1.0 allows a predicted growth of at most 1.5x.
    /// - E, a large nearly step-constant cut (-5e-4 at step 1, -4.9e-4 at the final step).
    /// - R, a compounding cut (final -3e-4, step 1 unchanged; final-step z 1.5 under shared noise):
    ///   1.2e-3 / 1e-3 = 1.2x.
    /// - S, a small nearly step-constant cut (-2e-4, -1.9e-4): after R, 1.01e-3 / 8e-4 = 1.2625x.
    ///   E after R and S: 5.2e-4 / 3e-4 = 1.733x, over the cap.
    /// Without the cap the final step's order takes S and E (the largest cut per bit first), then R for
    /// the compounding error.
    func testTheGrowthCapKeepsStepConstantCutsFromRaisingTheGrowth() {
        typealias Move = UniformStartSearch.Move
        let first = kld(1e-3), last = kld(1.5e-3)
        let shared = (0..<400).map { Float(($0 / 2) % 2 == 0 ? 4e-3 : -4e-3) }   // se of R's final-step gain: 2e-4
        let moves = [
            Move(tensor: "E", type: .q8_0, bits: 150, kld: last.map { $0 - 4.9e-4 }, steps: [first.map { $0 - 5e-4 }, last.map { $0 - 4.9e-4 }]),
            Move(tensor: "R", type: .q5_K, bits: 120, kld: zip(last, shared).map { $0 - 3e-4 + $1 },
                 steps: [zip(first, shared).map { $0 + $1 }, zip(last, shared).map { $0 - 3e-4 + $1 }]),
            Move(tensor: "S", type: .q5_K, bits: 110, kld: last.map { $0 - 1.9e-4 }, steps: [first.map { $0 - 2e-4 }, last.map { $0 - 1.9e-4 }]),
        ]
        let bits = ["E": 100, "R": 100, "S": 100]
        let capped = UniformStartSearch.choose(base: .q4_K, baseKLD: last, baseSteps: [first, last], baseBits: bits,
                                               moves: moves, limit: 400, margin: 3, growthMargin: 2, growthCap: 1.0)
        XCTAssertEqual(capped.taken.map(\.tensor), ["R", "S"])
        XCTAssertEqual(capped.types["E"], .q4_K)
        XCTAssertEqual(capped.bits, 330)
        let uncapped = UniformStartSearch.choose(base: .q4_K, baseKLD: last, baseSteps: [first, last], baseBits: bits,
                                                 moves: moves, limit: 400, margin: 3, growthMargin: 2)
        XCTAssertEqual(uncapped.taken.map(\.tensor), ["S", "E", "R"])
        // A looser cap (1.2 x 1.5 = 1.8x) lets E in after R and S (1.733x).
        let loose = UniformStartSearch.choose(base: .q4_K, baseKLD: last, baseSteps: [first, last], baseBits: bits,
                                              moves: moves, limit: 400, margin: 3, growthMargin: 2, growthCap: 1.2)
        XCTAssertEqual(loose.taken.map(\.tensor), ["R", "S", "E"])
        XCTAssertEqual(UniformStartSearch.growth([3e-4, 4e-4, 5e-4]), 5.0 / 3.0, accuracy: 1e-12)
        XCTAssertEqual(UniformStartSearch.growth([0, 1e-3]), 1)
    }
}
