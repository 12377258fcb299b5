/// Which loop step's logits a forward pass returns (0-based steps, as upstream).
public enum ExitMode: Sendable, Equatable {
    /// The last loop step.
    case lastStep
    /// Step k (upstream `exit_at_step`); out of range falls back to the last step, as upstream ignores it.
    case step(Int)
    /// Per token, the first step whose cumulative exit probability reaches the threshold, else the last.
    case threshold(Float)
    /// Σ_s p_s · logits_s (upstream `use_weighted_exit` with no configured threshold).
    case weighted

    /// What upstream's forward does without exit arguments: the threshold branch with
    /// `config.early_exit_threshold` when set (1.0 in real configs), else the last step.
    public static func `default`(for config: OuroConfiguration) -> ExitMode {
        config.earlyExitThreshold.map { .threshold(Float($0)) } ?? .lastStep
    }
}
