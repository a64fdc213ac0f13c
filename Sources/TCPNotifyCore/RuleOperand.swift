/// What a rule term reads: a `tcp_info` field, or a value the kernel computes beside it.
public enum RuleOperand: Hashable, Sendable, CustomStringConvertible {
    case field(TCPInfoField)
    /// Microseconds since the socket was enrolled, i.e. its lifetime as tcpnotify sees it.
    case age

    /// TCPNOTIFY_VFIELD_AGE_US: virtual fields are numbered from 128, past every tcp_info field.
    public static let ageKernelID: UInt16 = 128

    /// The id the kernel table stores: the field's raw value, or a virtual field id.
    public var kernelID: UInt16 {
        switch self {
        case .field(let field): field.rawValue
        case .age: Self.ageKernelID
        }
    }

    /// The name rules use: "rtt", "age".
    public var name: String {
        switch self {
        case .field(let field): field.name
        case .age: "age"
        }
    }

    public var description: String { name }

    public var unit: FieldUnit {
        switch self {
        case .field(let field): field.unit
        case .age: .microseconds
        }
    }

    /// Largest value the operand can take.
    public var maxValue: UInt64 {
        switch self {
        case .field(let field): field.maxValue
        case .age: .max
        }
    }

    /// One line on what it means.
    public var summary: String {
        switch self {
        case .field(let field): field.summary
        case .age: "time since the socket was enrolled (its lifetime), microseconds"
        }
    }

    /// Every operand: the tcp_info fields in kernel order, then `age`.
    public static let allCases: [RuleOperand] = TCPInfoField.allCases.map { .field($0) } + [.age]

    /// The operand with this exact (lowercase) name.
    public static func named(_ name: String) -> RuleOperand? {
        if name == "age" { return .age }
        return TCPInfoField.named(name).map { .field($0) }
    }

    /// Amounts that can be added, divided and followed over time; states, flags and codes cannot.
    var isQuantity: Bool {
        switch unit {
        case .microseconds, .milliseconds, .bytes, .bytesPerSecond, .segments, .count: true
        case .state, .caState, .flags, .boolean, .wscale, .other: false
        }
    }

    /// Units that add up: the same unit, with segments and plain counts treated alike.
    func isAdditive(with other: RuleOperand) -> Bool {
        let counts: Set<FieldUnit> = [.segments, .count]
        return unit == other.unit || (counts.contains(unit) && counts.contains(other.unit))
    }
}
