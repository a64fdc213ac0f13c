/// When rules need the periodic sweep: sock_ops callbacks fire only when TCP does something, so a rule
/// that can become true while a socket is silent (a peer that vanished, a window stuck at zero, time
/// passing) is checked by the sweep as well. How often: `SweepSchedule`.
extension CompiledRules {
    /// Fields that move with time alone, or that describe a silence no TCP event interrupts.
    public static let silenceFields: Set<TCPInfoField> = [
        .lastDataSent, .lastAckSent, .lastDataRecv, .lastAckRecv, .probes, .backoff, .retransmits,
        .notsentBytes, .sndWnd, .unacked,
    ]

    /// True if some rule reads a silence field or `age`, keeps a window, or waits (`for`, `every`).
    public var needsSweep: Bool {
        SweepSchedule.derived(from: self, precision: SweepSchedule.defaultPrecision).intervalMilliseconds != nil
    }
}
