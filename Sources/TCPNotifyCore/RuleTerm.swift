/// The recent history of one operand, over `widthNanoseconds` (`struct tcpnotify_window`); shared by
/// every `increase()`/`rate()` term naming the same operand and width.
public struct RuleWindow: Hashable, Sendable, CustomStringConvertible {
    public var operand: RuleOperand
    public var widthNanoseconds: UInt64

    public init(operand: RuleOperand, widthNanoseconds: UInt64) {
        self.operand = operand
        self.widthNanoseconds = widthNanoseconds
    }

    /// "total_retrans, 1s", as inside `increase(...)`.
    public var description: String { "\(operand.name), \(ValueText.duration(nanoseconds: widthNanoseconds))" }
}

/// One test of the kernel's rule table (`struct tcpnotify_rule_term`): a value computed from one or two
/// operands, compared with a constant.
public struct RuleTerm: Hashable, Sendable, CustomStringConvertible {
    /// `enum tcpnotify_term_kind`.
    public enum Kind: UInt8, Sendable, CaseIterable {
        /// a
        case compare = 0
        /// a / b in parts per million (0/0 = 0, x/0 = max)
        case ratio = 1
        /// a + b, saturating
        case sum = 2
        /// a - b, 0 when b > a
        case difference = 3
        /// growth of a over the window
        case increase = 4
        /// that growth per second
        case rate = 5

        /// Binary kinds read `operand2`.
        public var isBinary: Bool { self == .ratio || self == .sum || self == .difference }
        /// Window kinds read the history of `operand`.
        public var usesWindow: Bool { self == .increase || self == .rate }
    }

    public var kind: Kind
    /// a
    public var operand: RuleOperand
    /// b, for ratio, sum and difference.
    public var operand2: RuleOperand?
    /// increase and rate only; 0 otherwise.
    public var windowWidthNanoseconds: UInt64
    public var op: ComparisonOperator
    /// In a's kernel unit; parts per million for ratio; a's unit per second for rate.
    public var value: UInt64

    public init(kind: Kind, operand: RuleOperand, operand2: RuleOperand? = nil, windowWidthNanoseconds: UInt64 = 0,
                op: ComparisonOperator, value: UInt64) {
        self.kind = kind
        self.operand = operand
        self.operand2 = kind.isBinary ? operand2 : nil
        self.windowWidthNanoseconds = kind.usesWindow ? windowWidthNanoseconds : 0
        self.op = op
        self.value = value
    }

    /// A plain comparison of a field with a constant.
    public init(field: TCPInfoField, op: ComparisonOperator, value: UInt64) {
        self.init(kind: .compare, operand: .field(field), op: op, value: value)
    }

    /// The window an increase/rate term reads.
    public var window: RuleWindow? {
        kind.usesWindow ? RuleWindow(operand: operand, widthNanoseconds: windowWidthNanoseconds) : nil
    }

    /// Canonical text: "rtt > 50ms", "retrans_rate > 2%", "increase(total_retrans, 1s) > 16",
    /// "delivery_rate_app_limited" (a bare boolean means == 1).
    public var description: String {
        if kind == .compare, valueKind == .boolean, op == .eq, value == 1 { return leftText }
        return "\(leftText) \(op.symbol) \(ValueText.render(value, as: valueKind))"
    }

    /// The compared side as written: a named metric where one matches ("queue_delay"), else "a / b".
    public var leftText: String {
        if let metric = DerivedMetric.matching(self) { return metric.name }
        switch kind {
        case .compare: return operand.name
        case .ratio: return "\(operand.name) / \(operand2?.name ?? "?")"
        case .sum: return "\(operand.name) + \(operand2?.name ?? "?")"
        case .difference: return "\(operand.name) - \(operand2?.name ?? "?")"
        case .increase: return "increase(\(window?.description ?? ""))"
        case .rate: return "rate(\(window?.description ?? ""))"
        }
    }

    /// What the comparison is about, without the comparison: terms with the same subject constrain
    /// the same value (used to find contradictions).
    var subject: RuleTerm {
        var subject = self
        subject.op = .eq
        subject.value = 0
        return subject
    }

    /// The largest value the compared side can take.
    var maximumLeftValue: UInt64 {
        switch kind {
        case .compare, .difference, .increase: operand.maxValue
        case .sum:
            operand.maxValue.addingReportingOverflow(operand2?.maxValue ?? 0).overflow
                ? .max : operand.maxValue + (operand2?.maxValue ?? 0)
        case .ratio, .rate: .max
        }
    }

    /// How the constant is written: a time, a rate, a ratio...
    var valueKind: RuleValueKind {
        switch kind {
        case .ratio: return DerivedMetric.matching(self)?.isPercentage == true ? .percentage : .ratio
        case .rate:
            switch operand.unit {
            case .bytes: return .bytesPerSecond
            case .microseconds: return .microseconds
            case .milliseconds: return .milliseconds
            default: return .plain(operand.unit)
            }
        case .compare, .sum, .difference, .increase:
            switch operand.unit {
            case .microseconds: return .microseconds
            case .milliseconds: return .milliseconds
            case .bytes: return .bytes
            case .bytesPerSecond: return .bytesPerSecond
            case .state: return .tcpState
            case .caState: return .congestionState
            case .boolean: return .boolean
            case .segments, .count, .flags, .wscale, .other: return .plain(operand.unit)
            }
        }
    }
}
