/// One stretch of a traffic client's life: what it writes, and for how long.
public struct TrafficPhase: Sendable, Equatable, CustomStringConvertible {
    public enum Mode: Sendable, Equatable {
        /// Write as fast as the socket takes data.
        case bulk
        /// Write at this average rate (an application-limited writer when the path could do more).
        case rate(bytesPerSecond: Double)
        /// Write nothing.
        case idle
    }

    public var mode: Mode
    public var seconds: Double

    public init(_ mode: Mode, seconds: Double) {
        self.mode = mode
        self.seconds = seconds
    }

    /// `bulk`, `rate=500k` or `idle`: the name samples carry in their `phase` field.
    public var name: String {
        switch mode {
        case .bulk: "bulk"
        case .rate(let bytesPerSecond): "rate=\(Int(bytesPerSecond))"
        case .idle: "idle"
        }
    }

    public var description: String { "\(name):\(seconds)" }

    /// Parses `MODE:SECONDS[,MODE:SECONDS...]`, MODE being `bulk`, `idle` or `rate=BYTES_PER_S`
    /// (k, M, G multiply by 1000s): `rate=500k:4,bulk:4`.
    public static func parseList(_ text: String) throws -> [TrafficPhase] {
        let phases = try text.split(separator: ",").map { item -> TrafficPhase in
            guard let colon = item.lastIndex(of: ":"), let seconds = Double(item[item.index(after: colon)...]),
                  seconds >= 0, seconds.isFinite else {
                throw LabError.invalidArgument("phase '\(item)' is not MODE:SECONDS (e.g. bulk:4, rate=500k:4, idle:2)")
            }
            return TrafficPhase(try parseMode(item[..<colon]), seconds: seconds)
        }
        if phases.isEmpty { throw LabError.invalidArgument("no phases in '\(text)'") }
        return phases
    }

    static func parseMode(_ text: Substring) throws -> Mode {
        if text == "bulk" { return .bulk }
        if text == "idle" { return .idle }
        if text.hasPrefix("rate=") {
            let rate = try ByteCount.parse(text.dropFirst(5))
            guard rate > 0 else { throw LabError.invalidArgument("rate must be positive in '\(text)'") }
            return .rate(bytesPerSecond: rate)
        }
        throw LabError.invalidArgument("unknown phase mode '\(text)'; use bulk, idle or rate=BYTES_PER_S")
    }
}

/// Byte counts and rates written with decimal suffixes: `64000`, `500k`, `2M`, `1G`.
public enum ByteCount {
    public static func parse<S: StringProtocol>(_ text: S) throws -> Double {
        let multipliers: [Character: Double] = ["k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9]
        var digits = Substring(text)
        var multiplier = 1.0
        if let last = digits.last, let factor = multipliers[last] {
            multiplier = factor
            digits = digits.dropLast()
        }
        guard let value = Double(digits), value.isFinite, value >= 0 else {
            throw LabError.invalidArgument("'\(text)' is not a byte count (e.g. 65536, 500k, 2M)")
        }
        return value * multiplier
    }
}
