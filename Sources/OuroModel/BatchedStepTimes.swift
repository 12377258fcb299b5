import Foundation

/// Where a `BatchedForward.run` spent its wall time, summed over the runs since the last reset
/// (nanoseconds). Filled only when `BatchedForward.stepTimes` is set (`ouro serve` with
/// OURO_SERVE_PROFILE=1); otherwise no clock is read.
public struct BatchedStepTimes: Sendable {
    /// Layer products (Q/K/V, o, gate/up with silu, down).
    public var products: UInt64 = 0
    /// RoPE and attention over the KV caches, with the copies in and out of the per-sequence scratch.
    public var attention: UInt64 = 0
    /// Storing the new rows' K/V into the caches.
    public var kvStore: UInt64 = 0
    /// The output head and the exit gate.
    public var head: UInt64 = 0
    /// The whole run (the rest: embeddings, norms, residual adds, Swift bookkeeping).
    public var total: UInt64 = 0

    public init() {}

    @inline(__always) static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
}
