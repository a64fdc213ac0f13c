/// Turns a `LogicExpression` into the kernel's clause table: an `or` of clauses, each an `and` of
/// atoms that must hold (`mustBeTrue`) or must not (`mustBeFalse`). `not` is pushed to the atoms with
/// De Morgan's laws; `and` distributes over `or`.
struct DisjunctiveNormalForm<Atom: Hashable & Sendable> {
    enum Failure: Error, Equatable {
        /// The expansion grew past `intermediateLimit` clauses.
        case tooManyClauses
        /// An atom without a bit: a compiler bug, reported rather than trapped.
        case unindexedAtom
    }

    /// Bit index of each atom (< 32).
    let bits: [Atom: Int]
    /// Semantic check of a clause beyond bit contradictions (e.g. `sport == 1 and sport == 2`).
    /// Must never reject a clause some socket could satisfy.
    let isSatisfiable: (Clause) -> Bool
    /// Bounds the work: `(a or b) and (c or d) and ...` doubles at every step.
    var intermediateLimit = 4096

    func clauses(of expression: LogicExpression<Atom>) throws(Failure) -> [Clause] {
        // Simplify once more at the top: a lone atom (`sport > 65535`) never went through a combine.
        simplified(try clauses(of: expression, negated: false))
    }

    private func clauses(of expression: LogicExpression<Atom>, negated: Bool) throws(Failure) -> [Clause] {
        switch expression {
        case .atom(let atom):
            guard let bit = bits[atom], (0..<32).contains(bit) else { throw .unindexedAtom }
            let mask = UInt32(1) << UInt32(bit)
            return [negated ? Clause(mustBeFalse: mask) : Clause(mustBeTrue: mask)]
        case .not(let operand):
            return try clauses(of: operand, negated: !negated)
        case .all(let operands):
            return try combine(operands, negated: negated, asConjunction: !negated)
        case .any(let operands):
            return try combine(operands, negated: negated, asConjunction: negated)
        }
    }

    /// De Morgan: a negated `and` is an `or` of negations, and the other way round.
    private func combine(_ operands: [LogicExpression<Atom>], negated: Bool,
                         asConjunction: Bool) throws(Failure) -> [Clause] {
        var result: [Clause]? = nil
        for operand in operands {
            let next = try clauses(of: operand, negated: negated)
            guard let accumulated = result else {
                result = next
                continue
            }
            result = asConjunction ? try product(accumulated, next) : simplified(accumulated + next)
            guard result?.count ?? 0 <= intermediateLimit else { throw .tooManyClauses }
        }
        return result ?? []
    }

    /// (a1 or a2) and (b1 or b2) = a1b1 or a1b2 or a2b1 or a2b2.
    private func product(_ left: [Clause], _ right: [Clause]) throws(Failure) -> [Clause] {
        guard left.count * right.count <= intermediateLimit else { throw .tooManyClauses }
        var combined: [Clause] = []
        combined.reserveCapacity(left.count * right.count)
        for a in left {
            for b in right {
                combined.append(Clause(mustBeTrue: a.mustBeTrue | b.mustBeTrue, mustBeFalse: a.mustBeFalse | b.mustBeFalse))
            }
        }
        return simplified(combined)
    }

    /// Drops clauses that can never hold, duplicates, and clauses another one absorbs
    /// (`a or (a and b)` is `a`). Keeps the first-seen order so output is stable.
    func simplified(_ clauses: [Clause]) -> [Clause] {
        var seen = Set<Clause>()
        let candidates = clauses.filter { !$0.isContradictory && seen.insert($0).inserted && isSatisfiable($0) }
        // Fewer literals first: a clause can only be absorbed by one with fewer (or equal) literals.
        let bySize = candidates.indices.sorted {
            (candidates[$0].literals.nonzeroBitCount, $0) < (candidates[$1].literals.nonzeroBitCount, $1)
        }
        var kept: [Int] = []
        for index in bySize where !kept.contains(where: { candidates[$0].isSubset(of: candidates[index]) }) {
            kept.append(index)
        }
        return kept.sorted().map { candidates[$0] }
    }
}

/// Can some value in `0...maximum` satisfy every comparison? Used to drop clauses such as
/// `sport == 1 and sport == 2` or `rtt > 10 and rtt < 5`. Exact for any mix of operators.
struct ValueRangeCheck {
    private var low: UInt64 = 0
    private var high: UInt64
    private var excluded = Set<UInt64>()
    private var isEmpty = false

    init(maximum: UInt64) {
        high = maximum
    }

    mutating func require(_ op: ComparisonOperator, _ value: UInt64) {
        switch op {
        case .eq: low = max(low, value); high = min(high, value)
        case .ne: excluded.insert(value)
        case .lt: if value == 0 { isEmpty = true } else { high = min(high, value - 1) }
        case .le: high = min(high, value)
        case .gt: if value == .max { isEmpty = true } else { low = max(low, value + 1) }
        case .ge: low = max(low, value)
        }
    }

    var isSatisfiable: Bool {
        guard !isEmpty, low <= high else { return false }
        // high - low + 1 values are left; satisfiable unless the exclusions cover them all.
        let excludedInside = UInt64(excluded.count { (low...high).contains($0) })
        return excludedInside <= high - low
    }
}
