/// One window's history in a socket's state (`struct tcpnotify_window_state`): a ring of snapshots.
public struct RuleWindowState: Sendable, Equatable {
    public static let snapshotCount = 4  // TCPNOTIFY_WINDOW_SNAPSHOTS

    public var values = [UInt64](repeating: 0, count: snapshotCount)
    /// Milliseconds since enrollment when each value was taken.
    public var atMilliseconds = [UInt32](repeating: 0, count: snapshotCount)
    /// Index of the newest snapshot.
    public var newest = 0
    /// Snapshots taken, up to `snapshotCount`.
    public var count = 0

    public init() {}
}

/// What the kernel keeps per socket for the rules (the rule part of `struct tcpnotify_sk_state`).
/// All zero at enrollment and whenever the rule generation changes.
public struct RuleSocketState: Sendable, Equatable {
    /// Rules that notified in their current true period (edge trigger; `for`/`every` rules too).
    public var rulesFired: UInt32 = 0
    /// `once` rules that have notified.
    public var onceFired: UInt32 = 0
    /// `for` rules whose condition holds since `sinceMilliseconds[slot]`.
    public var holding: UInt32 = 0
    /// Per timer slot: when the condition started to hold, ms since enrollment.
    public var sinceMilliseconds = [UInt32](repeating: 0, count: RuleExpression.maxTimedRules)
    /// Per timer slot: when the rule last notified, ms since enrollment.
    public var lastNotifiedMilliseconds = [UInt32](repeating: 0, count: RuleExpression.maxTimedRules)
    public var windows = [RuleWindowState](repeating: RuleWindowState(), count: RuleExpression.maxWindows)

    public init() {}
}

/// The kernel's overflow-safe integer arithmetic, shared by the reference evaluator and tests.
public enum RuleArithmetic {
    /// a / b in parts per million: 0/0 = 0, x/0 = max, saturating; exact to the ppm below.
    public static func ratioPartsPerMillion(_ a: UInt64, _ b: UInt64) -> UInt64 {
        guard b != 0 else { return a == 0 ? 0 : .max }
        let quotient = a / b, remainder = a % b
        guard quotient <= UInt64.max / 1_000_000 else { return .max }
        let fraction = remainder <= UInt64.max / 1_000_000 ? remainder * 1_000_000 / b : remainder / (b / 1_000_000)
        return quotient * 1_000_000 + fraction
    }

    public static func saturatingSum(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? .max : sum
    }

    /// a - b, or 0 when b > a.
    public static func flooredDifference(_ a: UInt64, _ b: UInt64) -> UInt64 { a > b ? a - b : 0 }

    /// Growth per second from growth over `elapsedMilliseconds`; 0 when no time has passed.
    public static func perSecond(_ increase: UInt64, elapsedMilliseconds: UInt32) -> UInt64 {
        guard elapsedMilliseconds > 0 else { return 0 }
        guard increase <= UInt64.max / 1000 else { return .max }
        return increase * 1000 / UInt64(elapsedMilliseconds)
    }
}

extension CompiledRules {
    /// One event of one socket, exactly as the kernel evaluates it (rules.bpf.h): update the windows,
    /// test the terms, combine the clauses, apply each rule's control. `value` gives each field at
    /// this event; `age` is computed here from the time, as the kernel does.
    /// Returns the rules true now and the rules that notify now.
    public func step(_ state: inout RuleSocketState, nowNanosecondsSinceEnrollment now: UInt64,
                     value: (RuleOperand) -> UInt64) -> (rulesTrue: UInt32, fired: UInt32) {
        let nowMilliseconds = UInt32(truncatingIfNeeded: now / 1_000_000)
        let read: (RuleOperand) -> UInt64 = { $0 == .age ? now / 1000 : value($0) }
        let growth = updateWindows(&state, nowMilliseconds: nowMilliseconds, read: read)
        var termBits: UInt32 = 0
        for (index, term) in terms.prefix(RuleExpression.maxTerms).enumerated() {
            let windowIndex = term.window.flatMap { windows.prefix(RuleExpression.maxWindows).firstIndex(of: $0) }
            if term.op.holds(leftValue(term, read: read, growth: windowIndex.map { growth[$0] }), term.value) {
                termBits |= 1 << UInt32(index)
            }
        }
        let rulesTrue = rules(forTermBits: termBits)
        return (rulesTrue, applyControls(&state, rulesTrue: rulesTrue, nowMilliseconds: nowMilliseconds))
    }

    /// Forgets everything about a socket: what the kernel does when the rule generation changes.
    public func reset(_ state: inout RuleSocketState) {
        state = RuleSocketState()
    }

    /// The rules true for one snapshot of a socket at its first event (windows empty, so increase
    /// and rate are 0), at age `value(.age)`.
    public func evaluate(_ value: (RuleOperand) -> UInt64) -> UInt32 {
        var state = RuleSocketState()
        let (age, overflow) = value(.age).multipliedReportingOverflow(by: 1000)
        return step(&state, nowNanosecondsSinceEnrollment: overflow ? .max : age, value: value).rulesTrue
    }

    /// Rule bits for term bits: rule i is true when any of its clauses holds.
    func rules(forTermBits termBits: UInt32) -> UInt32 {
        var rulesTrue: UInt32 = 0
        for clause in clauses.prefix(RuleExpression.maxClauses) where clause.holds(forBits: termBits) {
            rulesTrue |= 1 << (clause.rule & 31)
        }
        return rulesTrue
    }

    private func leftValue(_ term: RuleTerm, read: (RuleOperand) -> UInt64,
                           growth: (increase: UInt64, rate: UInt64)?) -> UInt64 {
        switch term.kind {
        case .compare: return read(term.operand)
        case .ratio: return RuleArithmetic.ratioPartsPerMillion(read(term.operand), term.operand2.map(read) ?? 0)
        case .sum: return RuleArithmetic.saturatingSum(read(term.operand), term.operand2.map(read) ?? 0)
        case .difference: return RuleArithmetic.flooredDifference(read(term.operand), term.operand2.map(read) ?? 0)
        case .increase: return growth?.increase ?? 0
        case .rate: return growth?.rate ?? 0
        }
    }

    /// Takes a snapshot when the newest is at least width/3 old, then measures growth against the
    /// youngest snapshot at least `width` old (or the oldest there is, on a young socket).
    private func updateWindows(_ state: inout RuleSocketState, nowMilliseconds now: UInt32,
                               read: (RuleOperand) -> UInt64) -> [(increase: UInt64, rate: UInt64)] {
        let ring = RuleWindowState.snapshotCount
        var growth: [(increase: UInt64, rate: UInt64)] = []
        for (index, window) in windows.prefix(RuleExpression.maxWindows).enumerated() {
            let current = read(window.operand)
            let widthMilliseconds = UInt32(truncatingIfNeeded: max(1, window.widthNanoseconds / 1_000_000))
            let spacingMilliseconds = max(1, widthMilliseconds / 3)
            var history = state.windows[index]
            if history.count == 0 {
                history.newest = 0
                history.values[0] = current
                history.atMilliseconds[0] = now
                history.count = 1
            } else if now &- history.atMilliseconds[history.newest] >= spacingMilliseconds {
                history.newest = (history.newest + 1) % ring
                history.values[history.newest] = current
                history.atMilliseconds[history.newest] = now
                history.count = min(history.count + 1, ring)
            }
            var baseline = (history.newest - (history.count - 1) + ring) % ring
            for back in 0..<history.count {
                let candidate = (history.newest - back + ring) % ring
                if now &- history.atMilliseconds[candidate] >= widthMilliseconds {
                    baseline = candidate
                    break
                }
            }
            let old = history.values[baseline]
            let increase = current >= old ? current - old : 0
            let elapsed = now &- history.atMilliseconds[baseline]
            growth.append((increase, RuleArithmetic.perSecond(increase, elapsedMilliseconds: elapsed)))
            state.windows[index] = history
        }
        return growth
    }

    /// Edge, each, once, for and every, per the kernel's rules.bpf.h.
    private func applyControls(_ state: inout RuleSocketState, rulesTrue: UInt32, nowMilliseconds now: UInt32) -> UInt32 {
        let ruleCount = min(rules.count, RuleExpression.maxRules)
        let allRules: UInt32 = ruleCount >= 32 ? .max : (1 << UInt32(ruleCount)) - 1
        var timedMask: UInt32 = 0, onceMask: UInt32 = 0
        let timers = timedRules.prefix(RuleExpression.maxTimedRules).filter { $0 >= 0 && $0 < ruleCount }
        for rule in timers { timedMask |= 1 << UInt32(rule) }
        for (index, rule) in rules.prefix(ruleCount).enumerated() where rule.control.once { onceMask |= 1 << UInt32(index) }

        let plain = allRules & ~timedMask
        var eachMask: UInt32 = 0
        for (index, rule) in rules.prefix(ruleCount).enumerated() where rule.control.each { eachMask |= 1 << UInt32(index) }
        var fired = (rulesTrue & plain & onceMask & ~state.onceFired) | (rulesTrue & plain & ~onceMask & ~state.rulesFired)
        fired |= rulesTrue & eachMask
        state.rulesFired = (state.rulesFired & ~plain) | (rulesTrue & plain)

        for (slot, rule) in timedRules.prefix(RuleExpression.maxTimedRules).enumerated() where rule >= 0 && rule < ruleCount {
            let bit = UInt32(1) << UInt32(rule)
            let control = rules[rule].control
            guard rulesTrue & bit != 0 else {
                state.holding &= ~bit
                state.rulesFired &= ~bit
                continue
            }
            var ready = true
            if control.forMilliseconds > 0 {
                if state.holding & bit == 0 {
                    state.holding |= bit
                    state.sinceMilliseconds[slot] = now
                }
                ready = now &- state.sinceMilliseconds[slot] >= control.forMilliseconds
            }
            guard ready else { continue }
            if control.once, state.onceFired & bit != 0 { continue }
            if state.rulesFired & bit == 0 {
                fired |= bit
                state.rulesFired |= bit
                state.lastNotifiedMilliseconds[slot] = now
            } else if control.everyMilliseconds > 0, now &- state.lastNotifiedMilliseconds[slot] >= control.everyMilliseconds {
                fired |= bit
                state.lastNotifiedMilliseconds[slot] = now
            }
        }
        state.onceFired |= fired & onceMask
        return fired
    }
}
