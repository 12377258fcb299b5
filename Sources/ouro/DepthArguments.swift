import ArgumentParser
import OuroModel

/// `--exit`, `--full-depth`, `--speculate`, `--draft-steps`: which loop step decides and how much of
/// the loop a generated token runs (generate, chat; Docs/ADAPTIVE_DEPTH.md).
struct DepthArguments: ParsableArguments {
    @Option(help: ArgumentHelp(
        "Exit mode: last, step:K (1-based), threshold:Q or weighted (default: as the original model, config early_exit_threshold, else last).",
        discussion: "threshold:Q stops each generated token at the first loop step whose cumulative exit probability reaches Q (early exit; an approximation: the deeper steps are not computed)."))
    var exit: ExitArgument?

    @Flag(help: "With --exit threshold:Q, compute every loop step for every token (no early exit; the same logits as the full model).")
    var fullDepth = false

    @Option(help: ArgumentHelp(
        "Self-speculative decoding: tokens drafted per verification pass (0: off; 3 with --draft-steps 1 decoded fastest on the trained fixture, Docs/ADAPTIVE_DEPTH.md).",
        discussion: "The first --draft-steps loop steps draft K tokens, the full model checks them in one pass; greedy output is exactly plain greedy's, sampled output has the same distribution. Needs --kv-share full."))
    var speculate: Int = 0

    @Option(help: "Loop steps that draft a token with --speculate (1 ..< the model's loop count).")
    var draftSteps: Int = 1

    @Option(help: ArgumentHelp(
        "With --speculate: stop drafting at a draft whose probability under the draft model is below P (0 ... 1; 0: always K drafts).",
        discussion: "An unlikely draft is usually rejected, and costs a draft and a verified position. The stop reads only the draft, so the output is unchanged.",
        valueName: "P"))
    var draftMinProbability: Double?

    /// `--draft-min-probability` when not given (Docs/ADAPTIVE_DEPTH.md: chosen on selection windows).
    static let defaultDraftMinProbability = 0.0

    /// An explicit `--exit threshold:Q`.
    var isThreshold: Bool {
        if case .threshold = exit?.mode { return true }
        return false
    }

    /// Early exit: an explicit `--exit threshold:Q` without `--full-depth`.
    var earlyExit: Bool { isThreshold && !fullDepth }

    /// The combinations that cannot work, each a one-line usage error naming the options.
    func check(kvShare: KVSharing) throws {
        guard speculate >= 0 else { throw ValidationError("'--speculate' must be 0 or more") }
        guard draftSteps >= 1 else { throw ValidationError("'--draft-steps' must be 1 or more") }
        if speculate > 0 && kvShare != .full {
            throw ValidationError("'--speculate' needs '--kv-share full' (under last/mean a token's kept K/V comes from its last step, which the next token needs before its first)")
        }
        if speculate > 0 && earlyExit {
            throw ValidationError("'--speculate' verifies with the full model; with '--exit threshold:Q' add '--full-depth'")
        }
        if fullDepth && !isThreshold {
            throw ValidationError("'--full-depth' applies to '--exit threshold:Q' only (other modes always run every step)")
        }
        if speculate == 0 && draftSteps != 1 {
            throw ValidationError("'--draft-steps' applies to '--speculate K' only")
        }
        if let p = draftMinProbability {
            guard speculate > 0 else { throw ValidationError("'--draft-min-probability' applies to '--speculate K' only") }
            guard (0...1).contains(p) else { throw ValidationError("'--draft-min-probability' takes a probability between 0 and 1, e.g. 0.5") }
        }
    }

    /// `--speculate K --draft-steps D` checked against the model's loop count; nil when off.
    func speculation(_ runner: OuroRunner) throws -> Speculation? {
        guard speculate > 0 else { return nil }
        guard draftSteps < runner.config.loopCount else {
            throw CLIError("'--draft-steps' is \(draftSteps); the model loops \(runner.config.loopCount) times, so it must be below that")
        }
        return Speculation(draftTokens: speculate, draftSteps: draftSteps,
                           minDraftProbability: draftMinProbability ?? Self.defaultDraftMinProbability)
    }
}
