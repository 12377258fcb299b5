import ArgumentParser

/// `validate --early-exit threshold:Q`: the threshold of real early exit on the decode path
/// (0 ... 1; 0 stops every decoded token after its first loop step).
struct EarlyExitArgument: ExpressibleByArgument {
    let threshold: Float

    init?(argument: String) {
        let parts = argument.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2, parts[0] == "threshold", let q = Float(parts[1]), q >= 0, q <= 1 else { return nil }
        threshold = q
    }

    static var defaultValueDescription: String { "threshold:Q" }
}
