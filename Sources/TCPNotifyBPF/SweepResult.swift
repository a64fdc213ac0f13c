/// What one sweep learnt about when the next one is needed (see `SweepHorizon`).
public struct SweepResult: Sendable, Equatable {
    /// The earliest instant (CLOCK_MONOTONIC ns, the clock of bpf_ktime_get_ns) at which a horizon term
    /// can next hold for a socket this sweep checked; nil when it checked none.
    public var earliestCrossingNanoseconds: UInt64?
    /// Every enrolled socket this sweep did not check was enrolled after this instant (its start; for
    /// iter/tcp, the namespace listing's if older): none of them can reach a horizon term sooner than
    /// this plus the shortest threshold.
    public var coversEnrolledFromNanoseconds: UInt64

    public init(earliest: UInt64?, coversEnrolledFrom: UInt64) {
        earliestCrossingNanoseconds = earliest
        coversEnrolledFromNanoseconds = coversEnrolledFrom
    }
}

/// The sweep's iterator link, and its object's `sweep_horizon` map.
struct SweepLink {
    let link: OpaquePointer
    /// iter/tcp: opened once in each network namespace.
    let perNamespace: Bool
    let horizonFD: Int32
}
