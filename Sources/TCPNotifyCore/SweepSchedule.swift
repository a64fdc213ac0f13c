/// How often the periodic sweep must run for the rules in force, with a stated precision.
///
/// A rule that can become true while a socket is silent is answered by the sweep, so it is late by up
/// to one sweep interval. For a time threshold T (`last_ack_recv > 1h`, `age > 30s`, `for 2s`,
/// `every 10s`, a window of 1s) a sweep every T × precision keeps that lateness within the precision:
///
///     interval = clamp(min over the rules' time scales T × precision, floor 100 ms, ceiling 60 s)
///
/// Fields that are not times but change without a TCP callback (probes, backoff, retransmits,
/// notsent_bytes, snd_wnd, unacked) have no threshold to scale: on their own they are swept every
/// 10 s (`stateIntervalMilliseconds`); TCP's events (RTO, retransmit, RTT, state) check them sooner.
/// No such rule: no sweep at all.
public struct SweepSchedule: Sendable, Equatable, CustomStringConvertible {
    /// `--sweep-precision` default: a rule is answered within 5 % of its threshold.
    public static let defaultPrecision = 0.05
    public static let floorMilliseconds: UInt64 = 100
    public static let ceilingMilliseconds: UInt64 = 60_000
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

    /// "every 60 s (last_ack_recv > 1h × 5 %)", "none (no rule needs it)".
    public var description: String {
        guard let intervalMilliseconds else { return "none (\(reason))" }
        return "every \(ValueText.duration(nanoseconds: intervalMilliseconds * 1_000_000)) (\(reason))"
    }

    /// A fixed interval (`--sweep-interval`, `diagnose`'s sampling); 0 turns the sweep off.
    public static func forced(milliseconds: UInt64, by source: String) -> SweepSchedule {
        milliseconds == 0 ? SweepSchedule(intervalMilliseconds: nil, reason: "\(source) 0")
            : SweepSchedule(intervalMilliseconds: milliseconds, reason: source)
    }

    /// The schedule `rules` need at `precision` (a fraction: 0.05 for 5 %).
    public static func derived(from rules: CompiledRules, precision: Double) -> SweepSchedule {
        var tightest: (milliseconds: UInt64, reason: String)?
        func consider(_ milliseconds: UInt64, _ reason: String) {
            if tightest.map({ milliseconds < $0.milliseconds }) ?? true { tightest = (milliseconds, reason) }
        }
        let percent = percentText(precision)
        func scaled(_ nanoseconds: UInt64, _ what: String) {
            let milliseconds = UInt64((Double(nanoseconds) / 1e6 * precision).rounded(.down))
            consider(min(max(milliseconds, floorMilliseconds), ceilingMilliseconds), "\(what) × \(percent)")
        }
        for term in rules.terms {
            if let window = term.window { scaled(window.widthNanoseconds, "window \(window)") }
            for operand in [term.operand] + (term.operand2.map { [$0] } ?? []) {
                if let scale = timeScaleNanoseconds(of: operand, in: term) {
                    scaled(scale, term.description)
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
        guard let tightest else { return SweepSchedule(intervalMilliseconds: nil, reason: "no rule needs it") }
        return SweepSchedule(intervalMilliseconds: tightest.milliseconds, reason: tightest.reason)
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

/// How the sweep's period is chosen: fixed (`--sweep-interval`, `diagnose`), or from the rules in force.
public enum SweepPolicy: Sendable, Equatable {
    case forced(milliseconds: UInt64)
    case derived(precision: Double)

    public func schedule(for rules: CompiledRules) -> SweepSchedule {
        switch self {
        case .forced(let milliseconds): .forced(milliseconds: milliseconds, by: "--sweep-interval")
        case .derived(let precision): .derived(from: rules, precision: precision)
        }
    }
}
