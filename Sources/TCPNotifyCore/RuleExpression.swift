/// When a true rule notifies (`struct tcpnotify_rule_control`). All zero: edge-triggered, i.e. notify
/// when it becomes true, re-arm once it is false at an event.
public struct RuleControl: Hashable, Sendable, CustomStringConvertible {
    /// `for 500ms`: notify only once the condition has held this long; 0 = not set.
    public var forMilliseconds: UInt32 = 0
    /// `every 1s`: while it holds, notify again at most once per interval; 0 = not set.
    public var everyMilliseconds: UInt32 = 0
    /// `once`: at most one notification per socket (until the rules change).
    public var once = false
    /// `each` (or `every event`): notify at every event at which it holds, not only when it becomes
    /// true: a per-event stream, e.g. every RTT sample of a flow. Excludes `for`, `every` and `once`.
    public var each = false

    public init(forMilliseconds: UInt32 = 0, everyMilliseconds: UInt32 = 0, once: Bool = false, each: Bool = false) {
        self.forMilliseconds = forMilliseconds
        self.everyMilliseconds = everyMilliseconds
        self.once = once
        self.each = each
    }

    /// Needs per-socket timers (one of TCPNOTIFY_MAX_TIMED_RULES slots).
    public var isTimed: Bool { forMilliseconds > 0 || everyMilliseconds > 0 }

    /// "for 2s every 10s once", "each"; empty for the default.
    public var description: String {
        var parts: [String] = []
        if forMilliseconds > 0 { parts.append("for " + ValueText.duration(milliseconds: UInt64(forMilliseconds))) }
        if everyMilliseconds > 0 { parts.append("every " + ValueText.duration(milliseconds: UInt64(everyMilliseconds))) }
        if once { parts.append("once") }
        if each { parts.append("each") }
        return parts.joined(separator: " ")
    }
}

/// A compiled rule: what notifications call it, what it tests, and when it notifies.
public struct RuleInfo: Sendable, Equatable {
    /// The `NAME=` given (or the preset's name), else the canonical text with its controls.
    public var name: String
    /// Canonical text of the condition, without controls.
    public var expression: String
    public var control: RuleControl

    public init(name: String, expression: String, control: RuleControl = RuleControl()) {
        self.name = name
        self.expression = expression
        self.control = control
    }

    /// The condition and its controls: "rtt > 50ms for 2s".
    public var expressionWithControl: String {
        control.description.isEmpty ? expression : expression + " " + control.description
    }

    /// A `--when` string that compiles back to this rule: "rtt > 50ms for 2s" or "bloat=rtt > 50ms for 2s".
    public var text: String {
        name == expressionWithControl ? name : "\(name)=\(expressionWithControl)"
    }
}

/// Rules compiled to the kernel's table (`struct tcpnotify_rule_table`).
public struct CompiledRules: Sendable, Equatable {
    /// At most 32 (TCPNOTIFY_MAX_RULES); rule i is bit i of `rules_fired` / `rules_true`.
    public var rules: [RuleInfo]
    /// At most 32 (TCPNOTIFY_MAX_RULE_TERMS), shared by all rules, no duplicates.
    public var terms: [RuleTerm]
    /// At most 32 (TCPNOTIFY_MAX_RULE_CLAUSES); `clause.rule` is the rule index; every rule has one or more.
    public var clauses: [Clause]
    /// At most 4 (TCPNOTIFY_MAX_WINDOWS), distinct, in order of first use; a term's window index is
    /// `windows.firstIndex(of: term.window!)`.
    public var windows: [RuleWindow]
    /// Indices of the rules with `for` or `every`, in order; at most 8 (TCPNOTIFY_MAX_TIMED_RULES). A
    /// rule's timer slot is its position here.
    public var timedRules: [Int]

    public init(rules: [RuleInfo], terms: [RuleTerm], clauses: [Clause], windows: [RuleWindow] = [],
                timedRules: [Int] = []) {
        self.rules = rules
        self.terms = terms
        self.clauses = clauses
        self.windows = windows
        self.timedRules = timedRules
    }

    /// Every distinct operand the table reads (terms and windows), in order of first use.
    public var operands: [RuleOperand] {
        var seen: [RuleOperand] = []
        for operand in terms.flatMap({ [$0.operand] + ($0.operand2.map { [$0] } ?? []) }) + windows.map(\.operand)
        where !seen.contains(operand) {
            seen.append(operand)
        }
        return seen
    }
}

/// The `--when` language: conditions over tcp_info fields, derived metrics and windows, with controls.
///
///     rttvar > 10ms or total_retrans > 16             two rules, named by their text
///     stalled=retransmits >= 3 and snd_wnd == 0       one rule named "stalled"
///     queue_delay > 20ms and rtt_inflation > 4 for 2s units, derived metrics, a control
///     increase(total_retrans, 1s) > 16 every 10s      a window, re-notifying while true
///     rtt > 0 each                                    a record at every event (every RTT sample...)
///     bufferbloat                                     a preset (RulePresets)
///
/// Each top-level `or` alternative of an unnamed expression is its own rule, so a notification can
/// say which alternative tripped; `NAME=` keeps the whole expression as one rule.
public enum RuleExpression {
    public static let maxRules = 32       // TCPNOTIFY_MAX_RULES
    public static let maxTerms = 32       // TCPNOTIFY_MAX_RULE_TERMS
    public static let maxClauses = 32     // TCPNOTIFY_MAX_RULE_CLAUSES
    public static let maxWindows = 4      // TCPNOTIFY_MAX_WINDOWS
    public static let maxTimedRules = 8   // TCPNOTIFY_MAX_TIMED_RULES
    public static let maxOperands = 16    // TCPNOTIFY_MAX_OPERANDS

    /// The built-in rules, used when no `--when` is given. Each fires rarely on a healthy host: a
    /// plain `snd_wnd == 0` was left out because, edge-triggered, it flaps with every busy receiver
    /// (about 200 notifications in 3 s of loopback iperf3).
    public static let defaultRules: [String] = [
        "retrans_burst=total_retrans > 16",
        "rto_stall=retransmits >= 3",
        "high_rtt=rtt > 200ms",
        "rtt_jitter=rttvar > 50ms",
        // Data outstanding and nothing heard for 5 s: a vanished peer or a black-holed path. Only the
        // periodic sweep sees it between RTOs.
        "silent_peer=last_ack_recv > 5s and unacked > 0",
    ]

    /// Compiles `--when` strings (each may start with `NAME=`, or be a preset) into one rule table.
    public static func compile(_ expressions: [String]) throws(ExpressionError) -> CompiledRules {
        let rules = try collectRules(expressions)
        var atoms: [RuleTerm] = []
        var seenAtoms = Set<RuleTerm>()
        for rule in rules {
            for atom in rule.expression.atoms where seenAtoms.insert(atom).inserted { atoms.append(atom) }
        }
        let bits = Dictionary(uniqueKeysWithValues: atoms.enumerated().map { ($1, $0) })
        let normalForm = DisjunctiveNormalForm<RuleTerm>(bits: bits) { clause in
            RuleSatisfiability.isSatisfiable(clause, terms: atoms)
        }
        var clauses: [Clause] = []
        for (index, rule) in rules.enumerated() {
            let ruleClauses: [Clause]
            do {
                ruleClauses = try normalForm.clauses(of: rule.expression)
            } catch {
                throw tooManyClauses(rule.input)
            }
            guard !ruleClauses.isEmpty else {
                throw ExpressionTokenCursor.errorForWholeInput(
                    "rule '\(rule.info.name)' can never be true: every alternative contradicts itself", input: rule.input)
            }
            clauses += ruleClauses.map { Clause(mustBeTrue: $0.mustBeTrue, mustBeFalse: $0.mustBeFalse, rule: UInt32(index)) }
            guard clauses.count <= maxClauses else { throw tooManyClauses(rule.input) }
        }
        let (terms, compacted) = ClauseTable.compact(atoms: atoms, clauses: clauses)
        var windows: [RuleWindow] = []
        for window in terms.compactMap(\.window) where !windows.contains(window) { windows.append(window) }
        let timed = rules.indices.filter { rules[$0].info.control.isTimed }
        return CompiledRules(rules: rules.map(\.info), terms: terms, clauses: compacted, windows: windows, timedRules: timed)
    }

    private struct PendingRule {
        var info: RuleInfo
        var expression: LogicExpression<RuleTerm>
        /// The `--when` string it came from, for error messages.
        var input: String
    }

    /// Parses every string, splits unnamed top-level `or`s into separate rules, and enforces the
    /// kernel's limits as they are reached, so the error names the string that broke one.
    private static func collectRules(_ expressions: [String]) throws(ExpressionError) -> [PendingRule] {
        var rules: [PendingRule] = []
        var usage = TableUsage()
        for original in expressions {
            let text = try RulePresets.expand(original)
            let parsed = try RuleParser.parse(text)
            let parts: [(name: String?, expression: LogicExpression<RuleTerm>)] =
                parsed.name != nil ? [(parsed.name, parsed.expression)] : parsed.expression.alternatives.map { (nil, $0) }
            for part in parts {
                let canonical = part.expression.rendered { $0.description }
                var info = RuleInfo(name: part.name ?? "", expression: canonical, control: parsed.control)
                if part.name == nil { info.name = info.expressionWithControl }
                if let existing = rules.first(where: { $0.info.name == info.name }) {
                    guard existing.info == info else {
                        throw ExpressionTokenCursor.errorForWholeInput(
                            "rule name '\(info.name)' is already used for '\(existing.info.expressionWithControl)'", input: text)
                    }
                    continue  // the same rule twice: keep one
                }
                let rule = PendingRule(info: info, expression: part.expression, input: text)
                try usage.add(rule, input: text)
                rules.append(rule)
            }
        }
        return rules
    }

    /// Counts what the rules so far take of the kernel table.
    private struct TableUsage {
        var rules = 0
        var timedRules = 0
        var terms = Set<RuleTerm>()
        var windows = Set<RuleWindow>()
        var operands = Set<RuleOperand>()

        mutating func add(_ rule: PendingRule, input: String) throws(ExpressionError) {
            rules += 1
            guard rules <= maxRules else {
                throw limit("more than \(maxRules) rules", "TCPNOTIFY_MAX_RULES", input,
                            hint: "name an expression (NAME=EXPR) to keep its 'or' alternatives together as one rule")
            }
            if rule.info.control.isTimed { timedRules += 1 }
            guard timedRules <= maxTimedRules else {
                throw limit("more than \(maxTimedRules) rules with 'for' or 'every'", "TCPNOTIFY_MAX_TIMED_RULES", input,
                            hint: "each needs per-socket timers; drop 'for'/'every' from some rules")
            }
            for term in rule.expression.atoms {
                terms.insert(term)
                if let window = term.window { windows.insert(window) }
                operands.insert(term.operand)
                if let second = term.operand2 { operands.insert(second) }
            }
            guard terms.count <= maxTerms else {
                throw limit("the rules use more than \(maxTerms) distinct terms", "TCPNOTIFY_MAX_RULE_TERMS", input,
                            hint: "share terms between rules, or drop some rules")
            }
            guard windows.count <= maxWindows else {
                throw limit("the rules use more than \(maxWindows) distinct windows (field and duration of increase() or rate())",
                            "TCPNOTIFY_MAX_WINDOWS", input, hint: "use the same durations for the same fields")
            }
            guard operands.count <= maxOperands else {
                throw limit("the rules read more than \(maxOperands) different fields", "TCPNOTIFY_MAX_OPERANDS", input,
                            hint: "drop some rules")
            }
        }

        private func limit(_ what: String, _ constant: String, _ input: String, hint: String) -> ExpressionError {
            ExpressionTokenCursor.errorForWholeInput("\(what); that is the kernel table's limit (\(constant))",
                                                     input: input, hint: hint)
        }
    }

    private static func tooManyClauses(_ input: String) -> ExpressionError {
        ExpressionTokenCursor.errorForWholeInput(
            "the rules expand to more than \(maxClauses) clauses in disjunctive normal form; that is the kernel table's limit (TCPNOTIFY_MAX_RULE_CLAUSES)",
            input: input, hint: "simplify the expressions or use fewer 'or' alternatives")
    }
}

/// Contradictions between terms on the same value (`rtt > 10ms and rtt < 5ms`, `state == LISTEN and
/// state == CLOSE`, `retransmits > 255`).
enum RuleSatisfiability {
    static func isSatisfiable(_ clause: Clause, terms: [RuleTerm]) -> Bool {
        var ranges: [RuleTerm: ValueRangeCheck] = [:]
        for (bit, term) in terms.enumerated() where bit < 32 {
            let mask = UInt32(1) << UInt32(bit)
            guard clause.literals & mask != 0 else { continue }
            let op = clause.mustBeTrue & mask != 0 ? term.op : term.op.negated
            ranges[term.subject, default: ValueRangeCheck(maximum: term.maximumLeftValue)].require(op, term.value)
        }
        return ranges.values.allSatisfy(\.isSatisfiable)
    }
}
