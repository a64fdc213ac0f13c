/// A comparison of a socket value with a constant; raw values are `enum tcpnotify_op`.
public enum ComparisonOperator: UInt8, CaseIterable, Sendable {
    case eq = 0
    case ne = 1
    case lt = 2
    case le = 3
    case gt = 4
    case ge = 5

    /// Canonical spelling: "==", "!=", "<", "<=", ">", ">=".
    public var symbol: String {
        switch self {
        case .eq: "=="
        case .ne: "!="
        case .lt: "<"
        case .le: "<="
        case .gt: ">"
        case .ge: ">="
        }
    }

    /// `lhs <op> rhs`, exactly as the BPF program's `tn_compare`.
    public func holds(_ lhs: UInt64, _ rhs: UInt64) -> Bool {
        switch self {
        case .eq: lhs == rhs
        case .ne: lhs != rhs
        case .lt: lhs < rhs
        case .le: lhs <= rhs
        case .gt: lhs > rhs
        case .ge: lhs >= rhs
        }
    }

    /// The operator that holds exactly when this one does not.
    public var negated: ComparisonOperator {
        switch self {
        case .eq: .ne
        case .ne: .eq
        case .lt: .ge
        case .le: .gt
        case .gt: .le
        case .ge: .lt
        }
    }

    /// Symbolic spellings accepted by both languages ("=" is a synonym of "==").
    static func symbolic(_ text: String) -> ComparisonOperator? {
        switch text {
        case "==", "=": .eq
        case "!=": .ne
        case "<": .lt
        case "<=": .le
        case ">": .gt
        case ">=": .ge
        default: nil
        }
    }
}

/// One conjunction of a DNF table (`struct tcpnotify_clause`): it holds when every `mustBeTrue` bit is
/// set and no `mustBeFalse` bit is. Bits index the predicate (filters) or term (rules) arrays.
public struct Clause: Sendable, Equatable, Hashable {
    public var mustBeTrue: UInt32
    public var mustBeFalse: UInt32
    /// Rules only: index of the rule this clause belongs to. Filters leave it 0.
    public var rule: UInt32

    public init(mustBeTrue: UInt32 = 0, mustBeFalse: UInt32 = 0, rule: UInt32 = 0) {
        self.mustBeTrue = mustBeTrue
        self.mustBeFalse = mustBeFalse
        self.rule = rule
    }

    /// Same test as the kernel's `tn_clauses_hold` for one clause.
    public func holds(forBits bits: UInt32) -> Bool {
        bits & mustBeTrue == mustBeTrue && bits & mustBeFalse == 0
    }

    /// Both masks together: every bit this clause mentions.
    var literals: UInt32 { mustBeTrue | mustBeFalse }

    /// A clause asking for a bit to be both set and clear can never hold.
    var isContradictory: Bool { mustBeTrue & mustBeFalse != 0 }

    /// True when every condition of `self` is also a condition of `other` (so `self` absorbs it).
    func isSubset(of other: Clause) -> Bool {
        mustBeTrue & ~other.mustBeTrue == 0 && mustBeFalse & ~other.mustBeFalse == 0
    }
}
