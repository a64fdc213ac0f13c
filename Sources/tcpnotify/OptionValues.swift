import ArgumentParser
import TCPNotifyCore

// MARK: - Values

/// Why an option's value was refused; ArgumentParser prints it after the option's name.
struct InvalidValue: Error, CustomStringConvertible {
    let description: String
}


/// Options that take a duration: the grammar of `DurationText` (500ms, 2s, 1m, 1h30m, ...), each with
/// the range it accepts. A bad value is refused while the arguments are parsed: exit 2 and
/// "The value 'X' is invalid for '--option <...>': the problem; the accepted forms".
enum DurationOption {

    /// `--sweep-interval`: 0 (off), or 1ms and longer.
    static let sweepInterval = parser(zeroTurnsOff: true, minimum: .milliseconds(1))
    /// `--interval`: 1ms to 1h.
    static let pollInterval = parser(minimum: .milliseconds(1), maximum: .seconds(3600))
    /// `--duration`, `--for`: longer than zero; plain numbers are seconds.
    static let stopAfter = parser(plainSeconds: true, minimum: TimeSpan(nanoseconds: 1))
    /// `diagnose --window`: 1s to 1h; plain numbers are seconds. Below a second the chrono stats' 4 ms
    /// jiffies make the shares noise (and the classifier wants a 1 s span).
    static let window = parser(plainSeconds: true, minimum: .seconds(1), maximum: .seconds(3600))
    /// `diagnose --interval`: 500ms (flows are sampled every 500 ms) to 1h.
    static let verdictInterval = parser(minimum: .milliseconds(500), maximum: .seconds(3600))
    /// `serve --client-idle-timeout`: 100ms to 1h.
    static let clientIdleTimeout = parser(minimum: .milliseconds(100), maximum: .seconds(3600))
    /// `serve --history-retention`: 1s to 7 days.
    static let historyRetention = parser(minimum: .seconds(1), maximum: .seconds(7 * 86400))

    static func parser(plainSeconds: Bool = false, zeroTurnsOff: Bool = false, minimum: TimeSpan,
                       maximum: TimeSpan? = nil) -> @Sendable (String) throws -> TimeSpan {
        { text in
            var forms = "write a duration like \(DurationText.examples)"
            if plainSeconds { forms += ", or a plain number of seconds" }
            if zeroTurnsOff { forms += ", or 0 to turn it off" }
            forms += " (units \(DurationText.unitNames))"
            let value: TimeSpan
            do throws(DurationText.Failure) {
                value = try DurationText.parse(text, plainNumbers: plainSeconds ? .seconds : .refused)
            } catch {
                // "0" alone is a plain number, which only turns things off.
                if zeroTurnsOff, text == "0" { return TimeSpan(nanoseconds: 0, text: text) }
                throw InvalidValue(description: "\(error.problem); \(forms)")
            }
            if value.isZero && zeroTurnsOff { return value }
            if value < minimum {
                let what = minimum.nanoseconds <= 1 ? "it must be longer than zero" : "it must be at least \(minimum)"
                throw InvalidValue(description: "'\(text)' is too short: \(what); \(forms)")
            }
            if let maximum, value > maximum {
                throw InvalidValue(description: "'\(text)' is too long: at most \(maximum); \(forms)")
            }
            return value
        }
    }
}
