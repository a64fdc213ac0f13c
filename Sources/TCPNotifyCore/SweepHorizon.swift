/// When a derived sweep schedule may skip its ticks: the sweep horizon.
///
/// A time that grows while a socket is silent (`last_ack_recv`, `last_data_recv`, ..., `age`) reaches
/// a threshold at an instant the sweep can compute: `threshold − value` from now, or a whole threshold
/// from the next reset when it is already past it. So when every term that needs the sweep is such a
/// `time > constant` (or `>=`), no rule can newly hold before the earliest of those instants over the
/// enrolled sockets, and the ticks before it need no sweep. Sockets enrolled later reach a threshold no
/// sooner than their enrollment plus the shortest one. A `last_ack_recv > 1h` rule over idle
/// connections is then swept about once an hour instead of every 3 minutes, and still answered within
/// one tick (`SweepSchedule`) of the instant it holds.
///
/// Not used (every tick sweeps, as the schedule says) when a rule keeps a window, waits (`for`,
/// `every`) or notifies at every event (`each`, for which each sweep is an event), when a term reads a
/// silence field without a time threshold (probes, snd_wnd, ...) that TCP's events do not check, or when
/// a horizon term is negated (`not last_ack_recv > 1h` can become true at an ACK that no callback
/// reports). Any rule change, or sockets enrolled from before the start, invalidate the horizon (the
/// caller's job): the next tick sweeps.
public struct SweepHorizon: Sendable, Equatable {
    /// `enum tcpnotify_horizon_unit`: the unit of a horizon term's operand.
    public enum Unit: UInt8, Sendable {
        case milliseconds = 1
        case microseconds = 2

        public var nanoseconds: UInt64 { self == .milliseconds ? 1_000_000 : 1000 }
    }

    /// The terms (bit i = term i) whose crossing bounds the next sweep.
    public var terms: UInt32
    /// The shortest of their thresholds: no socket enrolled after a sweep reaches one sooner.
    public var shortestThresholdNanoseconds: UInt64

    /// Bounds early: the kernel's silence times count jiffies, and the instant of a crossing is computed
    /// from a value read at the socket's visit.
    public static let marginNanoseconds: UInt64 = 20_000_000

    /// The unit of `term` when the kernel reports its horizon: a time that grows while the socket is
    /// silent, compared with `>` or `>=` against a constant.
    public static func unit(of term: RuleTerm) -> Unit? {
        guard term.kind == .compare, term.operand2 == nil, term.op == .gt || term.op == .ge else { return nil }
        switch term.operand {
        case .age:
            return .microseconds
        case .field(let field):
            guard CompiledRules.timeFields.contains(field) else { return nil }
            return field.unit == .milliseconds ? .milliseconds : .microseconds
        }
    }

    /// The horizon of `rules` when TCP's events check the fields of `coverage`; nil when their ticks
    /// cannot be skipped (see the type's description) or they need no sweep.
    public static func of(_ rules: CompiledRules, coverage: EventCoverage) -> SweepHorizon? {
        guard rules.windows.isEmpty,
              !rules.rules.contains(where: { $0.control.forMilliseconds > 0 || $0.control.everyMilliseconds > 0 || $0.control.each })
        else { return nil }
        var terms: UInt32 = 0
        var shortest = UInt64.max
        for (index, term) in rules.terms.enumerated() {
            let operands = [term.operand] + (term.operand2.map { [$0] } ?? [])
            let needsSweep = operands.contains { operand in
                if case .field(let field) = operand, coverage.fields.contains(field) { return false }
                return operand == .age || operand.isSilenceField
            }
            guard needsSweep else { continue }
            guard let unit = unit(of: term) else { return nil }
            terms |= 1 << UInt32(index)
            let (threshold, overflow) = term.value.multipliedReportingOverflow(by: unit.nanoseconds)
            shortest = min(shortest, overflow ? .max : threshold)
        }
        guard terms != 0, !rules.clauses.contains(where: { $0.mustBeFalse & terms != 0 }) else { return nil }
        return SweepHorizon(terms: terms, shortestThresholdNanoseconds: shortest)
    }

    /// The first instant a sweep is needed after one that reported `earliestCrossing` (nil: it checked no
    /// socket) and saw every socket enrolled before `coveredFrom` (CLOCK_MONOTONIC ns).
    public func nextSweepNanoseconds(earliestCrossing: UInt64?, coveredFrom: UInt64) -> UInt64 {
        let (unseen, overflow) = coveredFrom.addingReportingOverflow(shortestThresholdNanoseconds)
        let bound = min(earliestCrossing ?? .max, overflow ? .max : unseen)
        return bound > Self.marginNanoseconds ? bound - Self.marginNanoseconds : 0
    }
}
