/// A length of time as it was written: `500ms`, `2s`, `1h30m`.
public struct TimeSpan: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var nanoseconds: UInt64
    /// The text it was read from (or a canonical spelling), for messages and help defaults.
    public var text: String

    public init(nanoseconds: UInt64, text: String? = nil) {
        self.nanoseconds = nanoseconds
        self.text = text ?? DurationText.format(nanoseconds: nanoseconds)
    }

    public static func milliseconds(_ value: UInt64) -> TimeSpan { TimeSpan(nanoseconds: value * 1_000_000) }
    public static func seconds(_ value: UInt64) -> TimeSpan { TimeSpan(nanoseconds: value * 1_000_000_000) }

    /// Whole milliseconds, rounded to the nearest (halves up).
    public var milliseconds: UInt64 { nanoseconds / 1_000_000 + (nanoseconds % 1_000_000 >= 500_000 ? 1 : 0) }
    public var seconds: Double { Double(nanoseconds) / 1e9 }
    public var isZero: Bool { nanoseconds == 0 }

    public var description: String { text }

    public static func < (lhs: TimeSpan, rhs: TimeSpan) -> Bool { lhs.nanoseconds < rhs.nanoseconds }
    public static func == (lhs: TimeSpan, rhs: TimeSpan) -> Bool { lhs.nanoseconds == rhs.nanoseconds }
    public func hash(into hasher: inout Hasher) { hasher.combine(nanoseconds) }
}

/// The one duration grammar: rule durations (`for`, `every`, the windows of `increase`/`rate`),
/// command-line options (`--interval`, `--sweep-interval`, `--duration`, `--for`, `--window`) and the
/// `for`/`every` keys of config files all read durations here.
///
///     duration = component { component }        1h30m, 2m30s, 1s500ms
///     component = NUMBER UNIT                   units from the largest to the smallest, each once
///     NUMBER = DIGITS [ "." DIGITS ]            at most 18 significant digits after the point
///     UNIT = h | m | min | s | ms | us | µs
///
/// and, only where the caller allows it (options documented in seconds), a plain NUMBER of seconds.
/// The value is exact in nanoseconds (a finer fraction is rounded to the nearest nanosecond); at most
/// 2^64-1 ns (about 584 years). Callers decide what range they accept (zero, at least 1ms, ...).
public enum DurationText {
    /// The forms, for messages: "500ms, 2s, 1m, 1h30m".
    public static let examples = "500ms, 2s, 1m, 1h30m"
    /// Unit spellings, largest first.
    public static let unitNames = "h, m (or min), s, ms, us (or µs)"

    /// Whether a number without a unit is accepted, and as what.
    public enum PlainNumbers: Sendable {
        /// A unit is required (rules, and options not documented in seconds).
        case refused
        /// A plain number is that many seconds (`--duration 5`, `--window 3`).
        case seconds
    }

    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        public enum Reason: Sendable, Equatable {
            case empty
            case negative
            /// Not a number where one is expected: `abc`, `1..5s`, `.5s`.
            case notANumber
            /// A number without a unit: `2`, or the `30` of `1h30`.
            case missingUnit(number: String)
            case unknownUnit(String)
            /// A unit of another kind of quantity: `5Mbit` ("a rate"), `4KB` ("a size").
            case notATimeUnit(String, dimension: String)
            /// `30m1h`, `1s2s`: units must go from the largest to the smallest, each once.
            case unitOrder(String)
            case tooManyFractionDigits
            /// More than 2^64-1 nanoseconds.
            case tooLarge
        }

        public var text: String
        public var reason: Reason

        public init(text: String, reason: Reason) {
            self.text = text
            self.reason = reason
        }

        /// What is wrong, without the list of accepted forms.
        public var problem: String {
            switch reason {
            case .empty: "empty duration"
            case .negative: "'\(text)' is negative"
            case .notANumber: "'\(text)' is not a duration"
            case .missingUnit(let number):
                number == text ? "'\(text)' needs a time unit" : "'\(number)' in '\(text)' needs a time unit"
            case .unknownUnit(let unit):
                "unknown time unit '\(unit)' in '\(text)'" + (DurationText.suggestion(for: unit).map { "; did you mean '\($0)'?" } ?? "")
            case .notATimeUnit(let unit, let dimension): "'\(unit)' is \(dimension), not a time unit"
            case .unitOrder(let unit): "'\(unit)' is out of order in '\(text)'; units go from the largest to the smallest, each once"
            case .tooManyFractionDigits: "too many digits after the point in '\(text)' (at most 18)"
            case .tooLarge: "'\(text)' is too long (at most about 584 years)"
            }
        }

        /// The problem and the accepted forms.
        public var description: String {
            "\(problem); write a duration like \(DurationText.examples) (units \(DurationText.unitNames))"
        }
    }

    /// Reads a duration.
    public static func parse(_ text: String, plainNumbers: PlainNumbers = .refused) throws(Failure) -> TimeSpan {
        func fail(_ reason: Failure.Reason) -> Failure { Failure(text: text, reason: reason) }
        let scalars = Array(text.unicodeScalars)
        guard !scalars.isEmpty else { throw fail(.empty) }
        if scalars[0] == "-", scalars.count > 1, isDigit(scalars[1]) { throw fail(.negative) }
        var index = 0, total: UInt64 = 0, previousRank = Int.max
        while index < scalars.count {
            // NUMBER
            let numberStart = index
            while index < scalars.count, isDigit(scalars[index]) { index += 1 }
            guard index > numberStart else { throw fail(.notANumber) }
            var literal = NumericLiteral(integer: 0)
            guard let integer = UInt64(String(String.UnicodeScalarView(scalars[numberStart..<index]))) else { throw fail(.tooLarge) }
            literal.integer = integer
            if index < scalars.count, scalars[index] == "." {
                let start = index + 1
                index = start
                while index < scalars.count, isDigit(scalars[index]) { index += 1 }
                guard index > start else { throw fail(.notANumber) }
                var end = index
                while end > start, scalars[end - 1] == "0" { end -= 1 }
                guard end - start <= NumericLiteral.maximumFractionDigits else { throw fail(.tooManyFractionDigits) }
                literal.fractionDigits = end - start
                literal.fraction = end > start ? UInt64(String(String.UnicodeScalarView(scalars[start..<end]))) ?? 0 : 0
            }
            let number = String(String.UnicodeScalarView(scalars[numberStart..<index]))
            // UNIT
            let unitStart = index
            while index < scalars.count, !isDigit(scalars[index]), scalars[index] != "." { index += 1 }
            let unit = String(String.UnicodeScalarView(scalars[unitStart..<index]))
            let scale: UInt64, rank: Int
            if unit.isEmpty {
                // A plain number: only alone, and only where seconds are documented.
                guard plainNumbers == .seconds, numberStart == 0 else { throw fail(.missingUnit(number: number)) }
                (scale, rank) = (1_000_000_000, 0)
            } else if let known = timeUnits.firstIndex(where: { $0.spellings.contains(unit) }) {
                (scale, rank) = (timeUnits[known].nanoseconds, timeUnits.count - known)
            } else if let other = ValueUnit.named(unit) {
                throw fail(.notATimeUnit(unit, dimension: other.dimension.spelledOut))
            } else {
                throw fail(.unknownUnit(unit))
            }
            guard rank < previousRank else { throw fail(.unitOrder(unit)) }
            previousRank = rank
            guard let part = literal.scaled(by: Rational(scale, 1)) else { throw fail(.tooLarge) }
            let (sum, overflow) = total.addingReportingOverflow(part)
            guard !overflow else { throw fail(.tooLarge) }
            total = sum
        }
        return TimeSpan(nanoseconds: total, text: text)
    }

    /// An exact spelling that parses back: "1h30m", "1s500ms", "250us", "0s" (a part of a microsecond:
    /// "1.5us").
    public static func format(nanoseconds: UInt64) -> String {
        guard nanoseconds > 0 else { return "0s" }
        guard nanoseconds % 1000 == 0 else {
            return "\(nanoseconds / 1000).\(ValueText.decimal(nanoseconds % 1000, places: 3).dropFirst(2))us"
        }
        var rest = nanoseconds, text = ""
        for unit in timeUnits where rest >= unit.nanoseconds {
            text += "\(rest / unit.nanoseconds)\(unit.spellings[0])"
            rest %= unit.nanoseconds
        }
        return text
    }

    /// Time units, largest first; the first spelling is the main one.
    static let timeUnits: [(spellings: [String], nanoseconds: UInt64)] = [
        (["h"], 3_600_000_000_000),
        (["m", "min"], 60_000_000_000),
        (["s"], 1_000_000_000),
        (["ms"], 1_000_000),
        (["us", "µs", "μs"], 1000),
    ]

    /// The nearest time unit to a misspelled one (`sec` -> `s`, `MS` -> `ms`).
    static func suggestion(for unit: String) -> String? {
        let spellings = timeUnits.flatMap(\.spellings).filter { $0 != "μs" }
        if let sameIgnoringCase = spellings.first(where: { $0.lowercased() == unit.lowercased() }) { return sameIgnoringCase }
        let aliases = ["sec": "s", "secs": "s", "second": "s", "seconds": "s", "mins": "m", "minute": "m", "minutes": "m",
                       "hr": "h", "hrs": "h", "hour": "h", "hours": "h", "msec": "ms", "usec": "us"]
        if let alias = aliases[unit.lowercased()] { return alias }
        // One or two letters are nearly every unit's neighbour: no guess for them.
        return unit.count < 3 ? nil : NameSuggestion.nearest(to: unit, among: spellings, name: { $0 })
    }

    private static func isDigit(_ scalar: Unicode.Scalar) -> Bool { scalar >= "0" && scalar <= "9" }
}
