/// One subscriber's selection and rules, compiled on their own.
public struct Subscription: Sendable, Equatable {
    public var filter: CompiledFilter
    public var rules: CompiledRules
    /// The socket must also be in the exact-tuple list (`--tuples`; the list itself is global).
    public var usesTuples: Bool

    public init(filter: CompiledFilter, rules: CompiledRules, usesTuples: Bool = false) {
        self.filter = filter
        self.rules = rules
        self.usesTuples = usesTuples
    }
}

/// A filter clause of the shared table with the subscribers it selects for (`tcpnotify_clause.subscribers`).
public struct TaggedClause: Sendable, Equatable {
    public var clause: Clause
    public var subscribers: UInt32

    public init(clause: Clause, subscribers: UInt32) {
        self.clause = clause
        self.subscribers = subscribers
    }
}

/// A limit of the shared kernel tables that the subscribers together exceed.
public struct SharedTableError: Error, Sendable, Equatable, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// Every subscriber's filter and rules merged into the one set of kernel tables they share: filter
/// predicates and clauses (each clause tagged with its subscribers), and one rule table in which each
/// subscriber owns some rule bits. Identical rules of different subscribers share one bit.
public struct SharedTables: Sendable, Equatable {
    public var predicates: [FilterPredicate] = []
    public var filterClauses: [TaggedClause] = []
    /// Subscribers whose selection also needs the exact-tuple list.
    public var tupleSubscribers: UInt32 = 0
    /// The merged rule table; rule i is bit i of records' `rules_fired`.
    public var rules = CompiledRules(rules: [], terms: [], clauses: [])
    /// Bit i of entry s: subscriber s owns merged rule i (TCPNOTIFY_MAX_SUBSCRIBERS entries).
    public var subscriberRules = [UInt32](repeating: 0, count: SubscriptionSet.maxSubscribers)
    /// Per subscriber, its name of each merged rule it owns (by merged index; "" for the others).
    public var ruleNames: [Int: [String]] = [:]

    public init() {}

    /// The names to print for subscriber `slot` (index = merged rule bit).
    public func names(for slot: Int) -> [String] { ruleNames[slot] ?? [] }
}

/// Subscribers by slot (0..<32). `watch` is subscriber 0 alone, and then the shared tables are exactly
/// its own compiled filter and rules (same predicate, clause and rule indices).
public struct SubscriptionSet: Sendable, Equatable {
    public static let maxSubscribers = 32  // TCPNOTIFY_MAX_SUBSCRIBERS

    public private(set) var slots: [Int: Subscription] = [:]

    public init() {}

    public subscript(slot: Int) -> Subscription? {
        get { slots[slot] }
        set {
            precondition((0..<Self.maxSubscribers).contains(slot), "subscriber slot out of range")
            slots[slot] = newValue
        }
    }

    /// The lowest free slot at or above `from`, or nil when all are taken.
    public func freeSlot(from: Int = 0) -> Int? {
        (from..<Self.maxSubscribers).first { slots[$0] == nil }
    }

    public var mask: UInt32 { slots.keys.reduce(0) { $0 | (1 << UInt32($1)) } }

    /// Merges every subscriber into the shared tables, or says which shared limit they exceed.
    public func tables() throws(SharedTableError) -> SharedTables {
        var tables = SharedTables()
        let ordered = slots.keys.sorted()
        try mergeFilters(ordered, into: &tables)
        try mergeRules(ordered, into: &tables)
        return tables
    }

    private func mergeFilters(_ ordered: [Int], into tables: inout SharedTables) throws(SharedTableError) {
        for slot in ordered {
            guard let subscription = slots[slot] else { continue }
            let bit = UInt32(1) << UInt32(slot)
            if subscription.usesTuples { tables.tupleSubscribers |= bit }
            // No expression: one clause without literals, which always holds.
            let own = subscription.filter.matchAll ? [Clause()] : subscription.filter.clauses
            var remapped: [Int] = []
            for predicate in subscription.filter.predicates {
                if let index = tables.predicates.firstIndex(of: predicate) {
                    remapped.append(index)
                } else {
                    tables.predicates.append(predicate)
                    remapped.append(tables.predicates.count - 1)
                }
            }
            guard tables.predicates.count <= FilterExpression.maxPredicates else {
                throw SharedTableError(message:
                    "the subscribers' filters together use \(tables.predicates.count) distinct conditions; the shared kernel table holds "
                        + "\(FilterExpression.maxPredicates) (TCPNOTIFY_MAX_FILTER_PREDICATES)")
            }
            for clause in own {
                let merged = Clause(mustBeTrue: Self.remap(clause.mustBeTrue, remapped),
                                    mustBeFalse: Self.remap(clause.mustBeFalse, remapped))
                if let index = tables.filterClauses.firstIndex(where: { $0.clause == merged }) {
                    tables.filterClauses[index].subscribers |= bit
                } else {
                    tables.filterClauses.append(TaggedClause(clause: merged, subscribers: bit))
                }
            }
            guard tables.filterClauses.count <= FilterExpression.maxClauses else {
                throw SharedTableError(message:
                    "the subscribers' filters together expand to \(tables.filterClauses.count) alternatives; the shared kernel table holds "
                        + "\(FilterExpression.maxClauses) (TCPNOTIFY_MAX_FILTER_CLAUSES)")
            }
        }
    }

    private func mergeRules(_ ordered: [Int], into tables: inout SharedTables) throws(SharedTableError) {
        var rules: [RuleInfo] = []
        var terms: [RuleTerm] = []
        var clauses: [Clause] = []
        var owners: [UInt32] = []  // per merged rule: which subscribers own it
        for slot in ordered {
            guard let subscription = slots[slot] else { continue }
            let bit = UInt32(1) << UInt32(slot)
            let compiled = subscription.rules
            var termIndex: [Int] = []
            for term in compiled.terms {
                if let index = terms.firstIndex(of: term) {
                    termIndex.append(index)
                } else {
                    terms.append(term)
                    termIndex.append(terms.count - 1)
                }
            }
            var names = tables.ruleNames[slot] ?? []
            for (index, rule) in compiled.rules.enumerated() {
                // Another subscriber's identical rule (same condition and controls) is shared.
                let shared = rules.indices.first {
                    rules[$0].expressionWithControl == rule.expressionWithControl && owners[$0] & bit == 0
                }
                let mergedIndex: Int
                if let shared {
                    mergedIndex = shared
                } else {
                    rules.append(rule)
                    owners.append(0)
                    mergedIndex = rules.count - 1
                    for clause in compiled.clauses where clause.rule == UInt32(index) {
                        clauses.append(Clause(mustBeTrue: Self.remap(clause.mustBeTrue, termIndex),
                                              mustBeFalse: Self.remap(clause.mustBeFalse, termIndex),
                                              rule: UInt32(mergedIndex)))
                    }
                }
                owners[mergedIndex] |= bit
                if names.count < rules.count { names += Array(repeating: "", count: rules.count - names.count) }
                names[mergedIndex] = rule.name
            }
            tables.ruleNames[slot] = names
            try Self.checkRuleLimits(rules: rules, terms: ClauseTable.compact(atoms: terms, clauses: clauses).atoms, clauses: clauses)
        }
        for (index, owner) in owners.enumerated() {
            for slot in 0..<Self.maxSubscribers where owner & (1 << UInt32(slot)) != 0 {
                tables.subscriberRules[slot] |= 1 << UInt32(index)
            }
        }
        for slot in tables.ruleNames.keys {
            let names = tables.ruleNames[slot] ?? []
            tables.ruleNames[slot] = names + Array(repeating: "", count: max(0, rules.count - names.count))
        }
        var windows: [RuleWindow] = []
        for window in terms.compactMap(\.window) where !windows.contains(window) { windows.append(window) }
        let timed = rules.indices.filter { rules[$0].control.isTimed }
        // Only terms some clause uses remain (a shared rule's clauses were not copied twice).
        let (usedTerms, compacted) = ClauseTable.compact(atoms: terms, clauses: clauses)
        tables.rules = CompiledRules(rules: rules, terms: usedTerms, clauses: compacted, windows: windows, timedRules: timed)
        try Self.requireFit(tables.rules.windows.count <= RuleExpression.maxWindows, "use \(windows.count) distinct windows",
            holds: RuleExpression.maxWindows, "TCPNOTIFY_MAX_WINDOWS")
        try Self.requireFit(timed.count <= RuleExpression.maxTimedRules, "have \(timed.count) rules with 'for' or 'every'",
            holds: RuleExpression.maxTimedRules, "TCPNOTIFY_MAX_TIMED_RULES")
        let operands = tables.rules.operands.count
        try Self.requireFit(operands <= RuleExpression.maxOperands, "read \(operands) different fields",
            holds: RuleExpression.maxOperands, "TCPNOTIFY_MAX_OPERANDS")
    }

    /// The subscribers' rules together fit the shared kernel table, or an error says by how much they do not.
    private static func requireFit(_ fits: Bool, _ what: @autoclosure () -> String, holds limit: Int, _ macro: String)
        throws(SharedTableError) {
        guard fits else {
            throw SharedTableError(message: "the subscribers' rules together \(what()); the shared kernel table holds \(limit) (\(macro))")
        }
    }

    private static func checkRuleLimits(rules: [RuleInfo], terms: [RuleTerm], clauses: [Clause]) throws(SharedTableError) {
        try requireFit(rules.count <= RuleExpression.maxRules, "are \(rules.count) rules",
            holds: RuleExpression.maxRules, "TCPNOTIFY_MAX_RULES")
        try requireFit(terms.count <= RuleExpression.maxTerms, "use \(terms.count) distinct terms",
            holds: RuleExpression.maxTerms, "TCPNOTIFY_MAX_RULE_TERMS")
        try requireFit(clauses.count <= RuleExpression.maxClauses, "expand to \(clauses.count) clauses",
            holds: RuleExpression.maxClauses, "TCPNOTIFY_MAX_RULE_CLAUSES")
    }

    /// Moves bit i of `mask` to bit `newIndex[i]`.
    private static func remap(_ mask: UInt32, _ newIndex: [Int]) -> UInt32 {
        var result: UInt32 = 0
        for (old, new) in newIndex.enumerated() where old < 32 && mask & (1 << UInt32(old)) != 0 && new < 32 {
            result |= 1 << UInt32(new)
        }
        return result
    }
}
