/// Push's idle cost when the sweep runs less often than the window is long (every 3 min for
/// `last_ack_recv > 1h` at 5 %): a 10 s window then holds no sweep, and its CPU alone would leave the
/// sweep out. So the sweep is measured on its own (a run forced to sweep every `forcedIntervalSeconds`,
/// less a run with no sweep, per sweep) and spread over the period the rules set:
///
///     push = (window CPU − its own sweeps × one sweep) + one sweep × window / period
struct IdleSweepCost {
    /// The forced run's period: 20 sweeps in a 10 s window (±1 at its edges: ±5 %).
    static let forcedIntervalSeconds = 0.5

    var windowSeconds: Double
    /// CPU of the window with the schedule the rules derive, and the sweeps that run made.
    var windowNanoseconds: Double
    var windowSweeps: UInt64
    /// CPU of one sweep, nanoseconds.
    var perSweepNanoseconds: Double
    /// The derived period; nil when the rules need no sweep.
    var periodSeconds: Double?

    /// One sweep from a forced run's and a sweepless run's window CPU.
    static func perSweep(forcedNanoseconds: Double, noSweepNanoseconds: Double, windowSeconds: Double) -> Double {
        let sweeps = (windowSeconds / forcedIntervalSeconds).rounded()
        return sweeps > 0 ? max(0, forcedNanoseconds - noSweepNanoseconds) / sweeps : 0
    }

    /// Everything but the sweep over the window, plus the sweep's share of it.
    var amortizedNanoseconds: Double {
        let rest = max(0, windowNanoseconds - Double(windowSweeps) * perSweepNanoseconds)
        guard let periodSeconds, periodSeconds > 0 else { return rest }
        return rest + perSweepNanoseconds * windowSeconds / periodSeconds
    }
}
