/// When rules need the periodic sweep: sock_ops callbacks fire only when TCP does something, so a rule
/// that can become true while a socket is silent (a peer that vanished, a window stuck at zero, time
/// passing) is checked by the sweep as well. How often: `SweepSchedule`.
extension CompiledRules {
    /// Fields that move with time alone, or that describe a silence no TCP event interrupts.
    public static let silenceFields: Set<TCPInfoField> = [
        .lastDataSent, .lastAckSent, .lastDataRecv, .lastAckRecv, .probes, .backoff, .retransmits,
        .notsentBytes, .sndWnd, .unacked,
    ]

    /// True if some rule reads a silence field or `age`, keeps a window, or waits (`for`, `every`): a
    /// sweep can find something. (Asked before every sweep: no allocation. `SweepSchedule.derived` is
    /// nil when this is false, and also when TCP's events check every such field: `EventCoverage`; a
    /// forced `--sweep-interval` still sweeps those.)
    public var needsSweep: Bool {
        if !windows.isEmpty { return true }
        if rules.contains(where: { $0.control.forMilliseconds > 0 || $0.control.everyMilliseconds > 0 }) { return true }
        return terms.contains { term in
            [term.operand, term.operand2].contains { operand in operand == .age || operand?.isSilenceField == true }
        }
    }
}
