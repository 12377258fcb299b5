/// Which loop steps of a forward call get the output head. The exit gate (one dot product per
/// position) runs at every step regardless; the head (a vocab x hidden matrix, about 7% of an
/// Ouro-1.4B file) runs only where its logits are read.
public enum LogitSelection: Sendable, Equatable {
    /// Every step's logits (validation compares them step by step; `forward(tokens:)`).
    case everyStep
    /// Only what `mode` reads: last step and `step(k)` one step, `threshold(q)` each position's exit
    /// step (decided as the steps run, so the head runs once per position), `weighted` every step.
    case exit(ExitMode)

    /// The one step whose logits are needed by every position, or nil when several are (or, for
    /// threshold, when it depends on the gates).
    func singleStep(loopCount: Int) -> Int? {
        switch self {
        case .everyStep: return nil
        case let .exit(mode):
            switch mode {
            case .lastStep: return loopCount - 1
            case let .step(k): return (0..<loopCount).contains(k) ? k : loopCount - 1
            case .threshold, .weighted: return nil
            }
        }
    }

    /// The threshold when logits are picked per position at its exit step.
    var threshold: Float? {
        if case let .exit(.threshold(q)) = self { return q }
        return nil
    }
}

/// How many loop steps a forward call runs.
enum LoopDepth: Equatable {
    /// All `total_ut_steps` (the reference semantics).
    case full
    /// Threshold exit for real: once every new position has reached its exit step the remaining steps
    /// are skipped, and the exit step's K/V is copied into the deeper steps' cache slots (so later
    /// tokens, which may run deeper, find a state there; under last/mean sharing the kept K/V is
    /// filed as the exit step's, see `KVCache.filesEveryStep`). Needs `.exit(.threshold)` logits and every
    /// new position recorded (decode, one token); otherwise it runs all steps.
    case earlyExit
    /// The first `n` steps only (a draft). The deeper slots of the new positions are left stale: the
    /// caller must truncate the cache past them before anything reads those slots.
    case firstSteps(Int)
}

/// The exit rule of `LoopOutputs.exitSteps`, one step at a time: the same float arithmetic, so the
/// step it picks is the same.
struct ExitAccumulator {
    private var remaining: Float = 1
    private var sum: Double = 0

    /// Adds step `step`'s gate logit; true when the cumulative exit probability reaches `threshold`
    /// (always at the last step).
    mutating func reaches(_ threshold: Float, gateLogit: Float, step: Int, steps: Int) -> Bool {
        let p: Float
        if step == steps - 1 {
            p = remaining
        } else {
            let lambda = 1 / (1 + expf(-gateLogit))
            p = lambda * remaining
            remaining = remaining * (1 - lambda)
        }
        sum += Double(p)
        return Float(sum) >= threshold || step == steps - 1
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
