/// A seeded linear congruential generator of floats in [-1, 1] (steps of 1e-6): the attention
/// kernel tests draw K/V rows and queries from it so every run sees the same values.
struct UnitIntervalGenerator {
    var state: UInt64
    mutating func next() -> Float {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Float(Int64(bitPattern: state >> 11) % 2_000_001) / 1_000_000 - 1
    }
}
