/// Durations given to command-line options (`--sweep-interval 1s`, `--interval 100ms`): the rule
/// language's time units, in milliseconds. A bare `0` means "off" where an option allows it.
public enum DurationOption {
    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    public static func milliseconds(_ text: String, allowZero: Bool = false) throws(Invalid) -> UInt64 {
        let hint = "give a number with a time unit: 100ms, 1s, 2m"
        if allowZero && text == "0" { return 0 }
        guard let literal = try? NumericLiteral.parse(text), !literal.unit.isEmpty else {
            throw Invalid(description: "invalid duration '\(text)': \(hint)")
        }
        guard let unit = ValueUnit.named(String(literal.unit)), unit.dimension == .time else {
            throw Invalid(description: "'\(literal.unit)' in '\(text)' is not a time unit: \(hint)")
        }
        guard let milliseconds = literal.scaled(by: unit.scale.dividing(by: Rational(1000, 1))) else {
            throw Invalid(description: "duration '\(text)' is too long")
        }
        guard milliseconds > 0 || allowZero else {
            throw Invalid(description: "duration '\(text)' is shorter than 1ms")
        }
        return milliseconds
    }
}
