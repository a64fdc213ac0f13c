/// How a rule constant is written and scaled; decided by what the term compares (`RuleTerm.valueKind`).
enum RuleValueKind: Equatable, Sendable {
    case microseconds
    case milliseconds
    case bytes
    case bytesPerSecond
    /// Parts per million, written 4, 1.5 or 20%.
    case ratio
    /// Parts per million, always written with % (the `_pct` metrics, where a bare 50 would be ambiguous).
    case percentage
    case tcpState
    case congestionState
    case boolean
    /// Whole numbers only (segments, counts, flags, codes), in the unit given for messages.
    case plain(FieldUnit)

    /// For messages: "a time in microseconds", "a rate in bytes per second".
    var spelledOut: String {
        switch self {
        case .microseconds: "a time in microseconds"
        case .milliseconds: "a time in milliseconds"
        case .bytes: "a size in bytes"
        case .bytesPerSecond: "a rate in bytes per second"
        case .ratio: "a ratio"
        case .percentage: "a percentage"
        case .tcpState: "a TCP state"
        case .congestionState: "a congestion state"
        case .boolean: "0 or 1"
        case .plain(let unit): unit.spelledOut
        }
    }

    /// The units a constant of this kind may carry.
    var dimension: UnitDimension? {
        switch self {
        case .microseconds, .milliseconds: .time
        case .bytes: .size
        case .bytesPerSecond: .rate
        case .ratio, .percentage: .percent
        case .tcpState, .congestionState, .boolean, .plain: nil
        }
    }

    /// What one unit-less whole number means, as a fraction of this kind's stored unit.
    var bareScale: Rational {
        self == .ratio ? Rational(1_000_000, 1) : Rational(1, 1)
    }

    /// The stored unit, in the dimension's base unit (microseconds, bytes, bytes/s, ppm).
    var baseScale: Rational {
        self == .milliseconds ? Rational(1000, 1) : Rational(1, 1)
    }

    /// Examples for hints.
    var example: String {
        switch self {
        case .microseconds: "50ms, 200us or 1.5s"
        case .milliseconds: "500ms or 2s"
        case .bytes: "64KiB, 4MB or 1500"
        case .bytesPerSecond: "5Mbit, 1Gbit, 10MBps or 125000"
        case .ratio: "4, 1.5 or 20%"
        case .percentage: "20% or 0.5%"
        case .tcpState: TCPState.allCases.map(\.name).joined(separator: ", ")
        case .congestionState: TCPCongestionState.allCases.map(\.name).joined(separator: ", ")
        case .boolean: "0 or 1"
        case .plain: "a whole number"
        }
    }
}

enum UnitDimension: Sendable {
    case time
    case size
    case rate
    case percent

    var spelledOut: String {
        switch self {
        case .time: "a time"
        case .size: "a size"
        case .rate: "a rate"
        case .percent: "a percentage"
        }
    }
}

/// A non-negative fraction num/den; scales between units exactly, without floating point.
struct Rational: Equatable, Sendable {
    var numerator: UInt64
    var denominator: UInt64

    init(_ numerator: UInt64, _ denominator: UInt64) {
        let divisor = Self.gcd(numerator, max(1, denominator))
        self.numerator = numerator / divisor
        self.denominator = max(1, denominator) / divisor
    }

    /// self / other, reduced. Factors here are all far below 2^32, so the products cannot overflow.
    func dividing(by other: Rational) -> Rational {
        let left = Self.gcd(numerator, other.numerator), right = Self.gcd(denominator, other.denominator)
        return Rational((numerator / max(1, left)) * (other.denominator / max(1, right)),
                        (denominator / max(1, right)) * (other.numerator / max(1, left)))
    }

    static func gcd(_ a: UInt64, _ b: UInt64) -> UInt64 {
        var (a, b) = (a, b)
        while b != 0 { (a, b) = (b, a % b) }
        return max(a, 1)
    }
}

/// A unit a rule constant can carry: `ms`, `Mbit`, `KiB`, `%`.
struct ValueUnit: Sendable {
    var spellings: [String]
    var dimension: UnitDimension
    /// The unit in its dimension's base: microseconds, bytes, bytes per second, parts per million.
    var scale: Rational

    static let all: [ValueUnit] = [
        ValueUnit(spellings: ["us", "µs", "μs"], dimension: .time, scale: Rational(1, 1)),
        ValueUnit(spellings: ["ms"], dimension: .time, scale: Rational(1000, 1)),
        ValueUnit(spellings: ["s"], dimension: .time, scale: Rational(1_000_000, 1)),
        ValueUnit(spellings: ["m", "min"], dimension: .time, scale: Rational(60_000_000, 1)),
        ValueUnit(spellings: ["h"], dimension: .time, scale: Rational(3_600_000_000, 1)),
        ValueUnit(spellings: ["B"], dimension: .size, scale: Rational(1, 1)),
        ValueUnit(spellings: ["KB", "kB"], dimension: .size, scale: Rational(1000, 1)),
        ValueUnit(spellings: ["MB"], dimension: .size, scale: Rational(1_000_000, 1)),
        ValueUnit(spellings: ["GB"], dimension: .size, scale: Rational(1_000_000_000, 1)),
        ValueUnit(spellings: ["KiB"], dimension: .size, scale: Rational(1024, 1)),
        ValueUnit(spellings: ["MiB"], dimension: .size, scale: Rational(1 << 20, 1)),
        ValueUnit(spellings: ["GiB"], dimension: .size, scale: Rational(1 << 30, 1)),
        // Bits per second, as tc writes them; converted to the kernel's bytes per second.
        ValueUnit(spellings: ["bit", "bit/s"], dimension: .rate, scale: Rational(1, 8)),
        ValueUnit(spellings: ["kbit", "Kbit", "kbit/s", "Kbit/s"], dimension: .rate, scale: Rational(125, 1)),
        ValueUnit(spellings: ["Mbit", "mbit", "Mbit/s"], dimension: .rate, scale: Rational(125_000, 1)),
        ValueUnit(spellings: ["Gbit", "gbit", "Gbit/s"], dimension: .rate, scale: Rational(125_000_000, 1)),
        ValueUnit(spellings: ["Bps", "B/s"], dimension: .rate, scale: Rational(1, 1)),
        ValueUnit(spellings: ["KBps", "kBps", "KB/s", "kB/s"], dimension: .rate, scale: Rational(1000, 1)),
        ValueUnit(spellings: ["MBps", "MB/s"], dimension: .rate, scale: Rational(1_000_000, 1)),
        ValueUnit(spellings: ["GBps", "GB/s"], dimension: .rate, scale: Rational(1_000_000_000, 1)),
        ValueUnit(spellings: ["KiBps", "KiB/s"], dimension: .rate, scale: Rational(1024, 1)),
        ValueUnit(spellings: ["MiBps", "MiB/s"], dimension: .rate, scale: Rational(1 << 20, 1)),
        ValueUnit(spellings: ["GiBps", "GiB/s"], dimension: .rate, scale: Rational(1 << 30, 1)),
        ValueUnit(spellings: ["%"], dimension: .percent, scale: Rational(10_000, 1)),
    ]

    /// Spellings read both ways by different tools (megabits or megabytes per second?): refused.
    static let ambiguous: Set<String> = ["bps", "kbps", "Kbps", "KBPS", "mbps", "Mbps", "MBPS", "gbps", "Gbps", "GBPS"]

    static func named(_ spelling: String) -> ValueUnit? {
        all.first { $0.spellings.contains(spelling) }
    }

    /// Every spelling, for "did you mean" and hints.
    static let allSpellings: [String] = all.flatMap(\.spellings)

    static func spellings(of dimension: UnitDimension) -> [String] {
        all.filter { $0.dimension == dimension }.map { $0.spellings[0] }
    }
}

/// A number as written: digits, an optional fraction, and what follows (the unit).
struct NumericLiteral: Equatable, Sendable {
    var integer: UInt64
    /// The digits after the point, as an integer over 10^fractionDigits.
    var fraction: UInt64 = 0
    var fractionDigits = 0
    var unit: Substring = ""

    var isWhole: Bool { fraction == 0 }

    static let maximumFractionDigits = 18

    enum Failure: Error, Equatable {
        case notANumber
        case tooLarge
        case tooManyFractionDigits
    }

    /// `1500`, `0x5dc`, `1.5ms`, `20%`. Hex takes no fraction and no unit.
    static func parse(_ text: String) throws(Failure) -> NumericLiteral {
        let scalars = Array(text.utf8)
        guard let first = scalars.first, isDigit(first) else { throw .notANumber }
        if scalars.count >= 2, first == UInt8(ascii: "0"), scalars[1] | 0x20 == UInt8(ascii: "x") {
            let digits = text.dropFirst(2)
            guard !digits.isEmpty, digits.allSatisfy(\.isHexDigit) else { throw .notANumber }
            guard let value = UInt64(digits, radix: 16) else { throw .tooLarge }
            return NumericLiteral(integer: value)
        }
        var index = 0
        while index < scalars.count, isDigit(scalars[index]) { index += 1 }
        guard let integer = UInt64(String(decoding: scalars[0..<index], as: UTF8.self)) else { throw .tooLarge }
        var literal = NumericLiteral(integer: integer)
        if index < scalars.count, scalars[index] == UInt8(ascii: ".") {
            let start = index + 1
            index = start
            while index < scalars.count, isDigit(scalars[index]) { index += 1 }
            guard index > start else { throw .notANumber }
            // Trailing zeros say nothing; dropping them keeps `1.500000000000000000000ms` acceptable.
            var end = index
            while end > start, scalars[end - 1] == UInt8(ascii: "0") { end -= 1 }
            guard end - start <= maximumFractionDigits else { throw .tooManyFractionDigits }
            literal.fractionDigits = end - start
            literal.fraction = end > start ? UInt64(String(decoding: scalars[start..<end], as: UTF8.self)) ?? 0 : 0
        }
        literal.unit = Substring(String(decoding: scalars[index...], as: UTF8.self))
        return literal
    }

    /// round(self × scale), to the nearest integer (halves up); nil when it exceeds 64 bits.
    func scaled(by scale: Rational) -> UInt64? {
        let numerator = UInt128(scale.numerator), denominator = UInt128(scale.denominator)
        let power = Self.powerOfTen(fractionDigits)
        // integer × n / d, split into quotient and remainder so nothing overflows 128 bits.
        let whole = UInt128(integer) * numerator
        let quotient = whole / denominator, remainder = whole % denominator
        // What is left: (remainder × 10^f + fraction × n) / (10^f × d); remainder < d, fraction < 10^18.
        let restNumerator = remainder * power + UInt128(fraction) * numerator
        let restDenominator = power * denominator
        let rest = restNumerator / restDenominator, restRemainder = restNumerator % restDenominator
        let rounded = quotient + rest + (restRemainder * 2 >= restDenominator ? 1 : 0)
        return rounded <= UInt128(UInt64.max) ? UInt64(rounded) : nil
    }

    private static func powerOfTen(_ exponent: Int) -> UInt128 {
        var result: UInt128 = 1
        for _ in 0..<max(0, exponent) { result *= 10 }
        return result
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
}

/// The units rule constants accept, for `tcpnotify fields`.
public struct RuleUnitGroup: Sendable, Equatable {
    /// "time", "size", "rate", "percentage".
    public var kind: String
    /// The main spelling of each unit (`Mbit/s`, `kB`, `min` are accepted too).
    public var spellings: [String]
    /// What they apply to.
    public var appliesTo: String

    public static let all: [RuleUnitGroup] = [
        RuleUnitGroup(kind: "time", spellings: ValueUnit.spellings(of: .time),
                      appliesTo: "us and ms fields, age, queue_delay, increase()/rate() of times, for/every and windows"),
        RuleUnitGroup(kind: "size", spellings: ValueUnit.spellings(of: .size),
                      appliesTo: "byte fields and increase() of them (K, M, G = 1000s; Ki, Mi, Gi = 1024s)"),
        RuleUnitGroup(kind: "rate", spellings: ValueUnit.spellings(of: .rate),
                      appliesTo: "bytes/s fields and rate() of byte fields (bit = bits/s, Bps = bytes/s, also Mbit/s, MB/s; 'Mbps' is refused as ambiguous)"),
        RuleUnitGroup(kind: "ratio", spellings: ["%"],
                      appliesTo: "ratios (a / b and the derived ratios: 4, 1.5 or 20%); the _pct metrics need it"),
    ]
}
