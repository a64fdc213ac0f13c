/// Durations on the command line (`--interval 100ms`), read with the rule language's number and unit
/// parser: `100ms`, `1s`, `1.5s`, `2m`, `250us`. A unit is required.
public enum DurationText {
    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
        public init(message: String) { self.message = message }
    }

    /// The duration in nanoseconds.
    public static func nanoseconds(_ text: String) throws(Failure) -> UInt64 {
        let hint = "durations take a time unit: 100ms, 1s, 1.5s, 2m"
        let literal: NumericLiteral
        do {
            literal = try NumericLiteral.parse(text)
        } catch .tooLarge {
            throw Failure(message: "duration '\(text)' is too long")
        } catch {
            throw Failure(message: "invalid duration '\(text)'; \(hint)")
        }
        guard !literal.unit.isEmpty else { throw Failure(message: "a duration needs a unit: '\(text)' of what? \(hint)") }
        guard let unit = ValueUnit.named(String(literal.unit)), unit.dimension == .time else {
            throw Failure(message: "'\(literal.unit)' is not a time unit in '\(text)'; \(hint)")
        }
        // Time units are in microseconds.
        guard let nanoseconds = literal.scaled(by: Rational(unit.scale.numerator * 1000, unit.scale.denominator)) else {
            throw Failure(message: "duration '\(text)' is too long")
        }
        return nanoseconds
    }
}
