import Foundation

/// Where a `BatchedForward.run` spent its wall time, summed over the runs since the last reset
/// (nanoseconds). Filled only when `BatchedForward.stepTimes` is set (`ouro serve` with
/// OURO_SERVE_PROFILE=1); otherwise no clock is read.
public struct BatchedStepTimes: Sendable {
    /// Layer products (Q/K/V, o, gate/up with silu, down).
    public var products: UInt64 = 0
    /// RoPE, attention over the KV caches and storing the new rows' K/V (one pool job).
    public var attention: UInt64 = 0
    /// The output head and the exit gate.
    public var head: UInt64 = 0
    /// The whole run (the rest: embeddings, norms, residual adds, Swift bookkeeping).
    public var total: UInt64 = 0

    public init() {}

    @inline(__always) static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
}
