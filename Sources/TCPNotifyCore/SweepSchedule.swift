/// How often the periodic sweep must run for the rules in force, with a stated precision.
///
/// A rule that can become true while a socket is silent is answered by the sweep, so it is late by up
/// to one sweep interval. For a time threshold T (`last_ack_recv > 1h`, `age > 30s`, `for 2s`,
/// `every 10s`, a window of 1s) a sweep every T × precision keeps that lateness within the precision:
///
///     interval = clamp(min over the rules' time scales T × precision, floor 100 ms, ceiling 5 min)
///
/// Fields that are not times but change without a TCP callback (probes, backoff, notsent_bytes,
/// snd_wnd, unacked) have no threshold to scale: on their own they are swept every 10 s
/// (`stateIntervalMilliseconds`). Fields whose every change TCP reports through a callback that checks
/// the rules (`EventCoverage`: retransmits, at the RTO) need no sweep. No other rule: no sweep at all.
public struct SweepSchedule: Sendable, Equatable, CustomStringConvertible {
    /// `--sweep-precision` default: a rule is answered within 5 % of its threshold.
    public static let defaultPrecision = 0.05
    public static let floorMilliseconds: UInt64 = 100
    /// Bounds how late a rule over hours is answered (`last_ack_recv > 2h` at 5 % would be 6 min);
    /// 1 h at 5 % (180 s) is under it.
    public static let ceilingMilliseconds: UInt64 = 300_000
    /// For rules on state fields without a time threshold.
    public static let stateIntervalMilliseconds: UInt64 = 10_000

    /// Milliseconds between sweeps; nil: the rules need no sweep.
    public var intervalMilliseconds: UInt64?
    /// What set the interval: "last_ack_recv > 1h × 5 %", "retransmits (state field)", "--sweep-interval".
    public var reason: String

    public init(intervalMilliseconds: UInt64?, reason: String) {
        self.intervalMilliseconds = intervalMilliseconds
        self.reason = reason
    }

    /// "every 3m (last_ack_recv > 1h × 5 %)", "none (no rule needs it)".
    public var description: String {
        guard let intervalMilliseconds else { return "none (\(reason))" }
        return "every \(ValueText.duration(nanoseconds: intervalMilliseconds * 1_000_000)) (\(reason))"
    }

    /// A fixed interval (`--sweep-interval`, `diagnose`'s sampling); 0 turns the sweep off.
    public static func forced(milliseconds: UInt64, by source: String) -> SweepSchedule {
        milliseconds == 0 ? SweepSchedule(intervalMilliseconds: nil, reason: "\(source) 0")
            : SweepSchedule(intervalMilliseconds: milliseconds, reason: source)
    }

    /// The schedule `rules` need at `precision` (a fraction: 0.05 for 5 %), when TCP's events check
    /// the fields of `coverage`.
    public static func derived(from rules: CompiledRules, precision: Double,
                               coverage: EventCoverage = .sockOpsCallbacks) -> SweepSchedule {
        var tightest: (milliseconds: UInt64, reason: String)?
        func consider(_ milliseconds: UInt64, _ reason: String) {
            if tightest.map({ milliseconds < $0.milliseconds }) ?? true { tightest = (milliseconds, reason) }
        }
        let percent = percentText(precision)
        func scaled(_ nanoseconds: UInt64, _ what: String) {
            let milliseconds = UInt64((Double(nanoseconds) / 1e6 * precision).rounded(.down))
            consider(min(max(milliseconds, floorMilliseconds), ceilingMilliseconds), "\(what) × \(percent)")
        }
        var covered: [String] = []
        for term in rules.terms {
            if let window = term.window { scaled(window.widthNanoseconds, "window \(window)") }
            for operand in [term.operand] + (term.operand2.map { [$0] } ?? []) {
                if let scale = timeScaleNanoseconds(of: operand, in: term) {
                    scaled(scale, term.description)
                } else if case .field(let field) = operand, coverage.fields.contains(field) {
                    if !covered.contains(operand.name) { covered.append(operand.name) }
                } else if operand == .age || operand.isSilenceField {
                    consider(stateIntervalMilliseconds, "\(operand.name) (no time threshold)")
                }
            }
        }
        for rule in rules.rules {
            if rule.control.forMilliseconds > 0 {
                scaled(UInt64(rule.control.forMilliseconds) * 1_000_000, "for in \(rule.name)")
            }
            if rule.control.everyMilliseconds > 0 {
                scaled(UInt64(rule.control.everyMilliseconds) * 1_000_000, "every in \(rule.name)")
            }
        }
        // "retransmits checked at TCP's events": says why a rule on it sets no interval.
        let coveredNote = covered.isEmpty ? "" : "; \(covered.joined(separator: ", ")) checked at \(coverage.events)"
        guard let tightest else {
            return SweepSchedule(intervalMilliseconds: nil, reason: covered.isEmpty ? "no rule needs it" : String(coveredNote.dropFirst(2)))
        }
        return SweepSchedule(intervalMilliseconds: tightest.milliseconds, reason: tightest.reason + coveredNote)
    }

    /// "5 %", "2.5 %".
    public static func percentText(_ fraction: Double) -> String {
        let tenths = Int((fraction * 1000).rounded())
        return tenths % 10 == 0 ? "\(tenths / 10) %" : "\(tenths / 10).\(tenths % 10) %"
    }

    /// The threshold, in nanoseconds, of a term comparing a time that grows while the socket is silent
    /// (`last_*`, `age`) with a constant; nil for other operands and for ratios.
    static func timeScaleNanoseconds(of operand: RuleOperand, in term: RuleTerm) -> UInt64? {
        guard term.kind == .compare || term.kind == .sum || term.kind == .difference else { return nil }
        switch operand {
        case .age:
            return term.value.multipliedReportingOverflow(by: 1000).partialValue
        case .field(let field):
            guard CompiledRules.timeFields.contains(field) else { return nil }
            let perUnit: UInt64 = field.unit == .milliseconds ? 1_000_000 : 1000
            let (product, overflow) = term.value.multipliedReportingOverflow(by: perUnit)
            return overflow ? .max : product
        }
    }
}

extension CompiledRules {
    /// Silence fields that are times: they grow by themselves while nothing happens.
    public static let timeFields: Set<TCPInfoField> = [.lastDataSent, .lastAckSent, .lastDataRecv, .lastAckRecv]
}

extension RuleOperand {
    var isSilenceField: Bool {
        if case .field(let field) = self { return CompiledRules.silenceFields.contains(field) }
        return false
    }
}

/// The fields whose every change TCP reports through a callback that checks the rules, so a rule on
/// them is answered without the sweep.
///
/// `retransmits` (icsk_retransmits) grows only when the retransmission timer expires (and, for a Fast
/// Open child, when its SYN-ACK timer does) and drops to 0 on an ACK. At the RTO, sock_ops gets RTO_CB
/// (before the increment) and, since Linux 6.7 (the increment moved into `tcp_update_rto_stats`), the
/// RETRANS_CB of that RTO's retransmission after it: a rule on it fires at the RTO that makes it true.
/// Before 6.7, the retransmit callback comes before the increment: the rule fires one RTO later (at
/// the next RTO_CB, or at the close). The other silence fields move without a callback (probes and
/// backoff at the zero-window probe timer, notsent_bytes at the application's writes, snd_wnd and
/// unacked at ACKs that give no RTT sample); rtt, rttvar and total_retrans move only at the events.
/// Sockets watched through the tracepoint fallback (before 6.12) get no RTO callback: `.none`.
public struct EventCoverage: Sendable, Hashable {
    public var fields: Set<TCPInfoField>
    /// What checks them, for the `sweep:` line.
    public var events: String

    public init(fields: Set<TCPInfoField>, events: String) {
        self.fields = fields
        self.events = events
    }

    /// Every enrolled socket has sock_ops's RTO and retransmit callbacks switched on.
    public static let sockOpsCallbacks = EventCoverage(fields: [.retransmits], events: "TCP's RTO and retransmit callbacks")
    /// Some enrolled socket is watched without them (the tracepoint fallback): the sweep checks everything.
    public static let none = EventCoverage(fields: [], events: "")
}

/// How the sweep's period is chosen: fixed (`--sweep-interval`, `diagnose`), or from the rules in force.
public enum SweepPolicy: Sendable, Equatable {
    case forced(milliseconds: UInt64)
    case derived(precision: Double)

    public func schedule(for rules: CompiledRules, coverage: EventCoverage = .sockOpsCallbacks) -> SweepSchedule {
        switch self {
        case .forced(let milliseconds): .forced(milliseconds: milliseconds, by: "--sweep-interval")
        case .derived(let precision): .derived(from: rules, precision: precision, coverage: coverage)
        }
    }
}
