/// One comparison of a `tcp_info` field with a constant (`struct tcpnotify_rule_term`).
public struct RuleTerm: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var field: TCPInfoField
    public var op: ComparisonOperator
    /// In the field's kernel unit (`field.unit`).
    public var value: UInt64

    public init(field: TCPInfoField, op: ComparisonOperator, value: UInt64) {
        self.field = field
        self.op = op
        self.value = value
    }

    /// Canonical text: "rtt > 200000", "state == CLOSE_WAIT", "ca_state == Loss".
    public var description: String { "\(field.name) \(op.symbol) \(Self.valueText(value, for: field))" }

    /// A value as the rule language writes it: state names for `state` and `ca_state`.
    public static func valueText(_ value: UInt64, for field: TCPInfoField) -> String {
        guard value <= UInt64(UInt8.max) else { return String(value) }
        switch field {
        case .state: return TCPState(rawValue: UInt8(value))?.name ?? String(value)
        case .caState: return TCPCongestionState(rawValue: UInt8(value))?.name ?? String(value)
        default: return String(value)
        }
    }
}

/// A compiled rule: what notifications call it and what it tests.
public struct RuleInfo: Sendable, Equatable {
    /// The `NAME=` given, or the canonical text of the expression.
    public var name: String
    /// Canonical text of the expression.
    public var expression: String

    public init(name: String, expression: String) {
        self.name = name
        self.expression = expression
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

    public init(rules: [RuleInfo], terms: [RuleTerm], clauses: [Clause]) {
        self.rules = rules
        self.terms = terms
        self.clauses = clauses
    }

    /// Reference evaluator with the kernel's semantics (`tn_evaluate`): bit i is set when rule i holds
    /// for these field values.
    public func evaluate(_ value: (TCPInfoField) -> UInt64) -> UInt32 {
        var termBits: UInt32 = 0
        for (index, term) in terms.prefix(32).enumerated() where term.op.holds(value(term.field), term.value) {
            termBits |= 1 << UInt32(index)
        }
        var rulesTrue: UInt32 = 0
        for clause in clauses.prefix(32) where clause.holds(forBits: termBits) {
            rulesTrue |= 1 << (clause.rule & 31)
        }
        return rulesTrue
    }
}

/// The `--when` language: `FIELD OP VALUE` terms joined by and/or/not and parentheses.
///
///     rttvar > 10000 or total_retrans > 16        two rules, named by their text
///     stalled=retransmits >= 3 and snd_wnd == 0   one rule named "stalled"
///     state == CLOSE_WAIT                         states by name; ca_state: Open, Disorder, CWR, Recovery, Loss
///
/// Each top-level `or` alternative of an unnamed expression is its own rule, so a notification can
/// say which alternative tripped; `NAME=` keeps the whole expression as one rule.
public enum RuleExpression {
    public static let maxRules = 32    // TCPNOTIFY_MAX_RULES
    public static let maxTerms = 32    // TCPNOTIFY_MAX_RULE_TERMS
    public static let maxClauses = 32  // TCPNOTIFY_MAX_RULE_CLAUSES

    /// The built-in rules, used when no `--when` is given. Each fires rarely on a healthy host: a
    /// plain `snd_wnd == 0` was left out because, edge-triggered, it flaps with every busy receiver
    /// (about 200 notifications in 3 s of loopback iperf3).
    public static let defaultRules: [String] = [
        "retrans_burst=total_retrans > 16",
        "rto_stall=retransmits >= 3",
        "high_rtt=rtt > 200000",
        "rtt_jitter=rttvar > 50000",
    ]

    /// Compiles `--when` strings (each may start with `NAME=`) into one rule table.
    public static func compile(_ expressions: [String]) throws(ExpressionError) -> CompiledRules {
        let rules = try collectRules(expressions)
        var atoms: [RuleTerm] = []
        var seenAtoms = Set<RuleTerm>()
        for rule in rules {
            for atom in rule.expression.atoms where seenAtoms.insert(atom).inserted { atoms.append(atom) }
            guard atoms.count <= maxTerms else {
                throw ExpressionTokenCursor.errorForWholeInput(
                    "the rules use more than \(maxTerms) distinct terms; that is the kernel table's limit (TCPNOTIFY_MAX_RULE_TERMS)",
                    input: rule.input, hint: "share terms between rules, or drop some rules")
            }
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
        return CompiledRules(rules: rules.map(\.info), terms: terms, clauses: compacted)
    }

    private struct PendingRule {
        var info: RuleInfo
        var expression: LogicExpression<RuleTerm>
        /// The `--when` string it came from, for error messages.
        var input: String
    }

    /// Parses every string and splits unnamed top-level `or`s into separate rules.
    private static func collectRules(_ expressions: [String]) throws(ExpressionError) -> [PendingRule] {
        var rules: [PendingRule] = []
        for text in expressions {
            let parsed = try RuleParser.parse(text)
            let parts: [(name: String?, expression: LogicExpression<RuleTerm>)] =
                parsed.name != nil ? [(parsed.name, parsed.expression)] : parsed.expression.alternatives.map { (nil, $0) }
            for part in parts {
                let canonical = part.expression.rendered { $0.description }
                let info = RuleInfo(name: part.name ?? canonical, expression: canonical)
                if let existing = rules.first(where: { $0.info.name == info.name }) {
                    guard existing.info == info else {
                        throw ExpressionTokenCursor.errorForWholeInput(
                            "rule name '\(info.name)' is already used for '\(existing.info.expression)'", input: text)
                    }
                    continue  // the same rule twice: keep one
                }
                rules.append(PendingRule(info: info, expression: part.expression, input: text))
                guard rules.count <= maxRules else {
                    throw ExpressionTokenCursor.errorForWholeInput(
                        "more than \(maxRules) rules; that is the kernel table's limit (TCPNOTIFY_MAX_RULES)", input: text,
                        hint: "name an expression (NAME=EXPR) to keep its 'or' alternatives together as one rule")
                }
            }
        }
        return rules
    }

    private static func tooManyClauses(_ input: String) -> ExpressionError {
        ExpressionTokenCursor.errorForWholeInput(
            "the rules expand to more than \(maxClauses) clauses in disjunctive normal form; that is the kernel table's limit (TCPNOTIFY_MAX_RULE_CLAUSES)",
            input: input, hint: "simplify the expressions or use fewer 'or' alternatives")
    }
}

/// Contradictions between terms on the same field (`rtt > 10 and rtt < 5`, `state == LISTEN and state == CLOSE`).
enum RuleSatisfiability {
    static func isSatisfiable(_ clause: Clause, terms: [RuleTerm]) -> Bool {
        var ranges: [TCPInfoField: ValueRangeCheck] = [:]
        for (bit, term) in terms.enumerated() where bit < 32 {
            let mask = UInt32(1) << UInt32(bit)
            guard clause.literals & mask != 0 else { continue }
            let op = clause.mustBeTrue & mask != 0 ? term.op : term.op.negated
            ranges[term.field, default: ValueRangeCheck(maximum: term.field.maxValue)].require(op, term.value)
        }
        return ranges.values.allSatisfy(\.isSatisfiable)
    }
}
