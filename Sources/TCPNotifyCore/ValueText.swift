/// Renders rule constants the way people write them; the text parses back to the same value.
enum ValueText {
    static func render(_ value: UInt64, as kind: RuleValueKind) -> String {
        switch kind {
        case .microseconds: time(value, units: [(3_600_000_000, "h"), (60_000_000, "m"), (1_000_000, "s"), (1000, "ms")], base: "us")
        case .milliseconds: time(value, units: [(3_600_000, "h"), (60_000, "m"), (1000, "s")], base: "ms")
        case .bytes:
            firstExact(value, [(1 << 30, "GiB"), (1 << 20, "MiB"), (1000_000_000, "GB"), (1_000_000, "MB"), (1024, "KiB"), (1000, "KB")])
        case .bytesPerSecond:
            firstExact(value, [(125_000_000, "Gbit"), (125_000, "Mbit"), (125, "kbit"), (1 << 30, "GiBps"), (1 << 20, "MiBps"), (1024, "KiBps")])
        case .ratio:
            value >= 1_000_000 ? decimal(value, places: 6) : decimal(value, places: 4) + (value == 0 ? "" : "%")
        case .percentage: decimal(value, places: 4) + "%"
        case .tcpState:
            value <= UInt64(UInt8.max) ? TCPState(rawValue: UInt8(value))?.name ?? String(value) : String(value)
        case .congestionState:
            value <= UInt64(UInt8.max) ? TCPCongestionState(rawValue: UInt8(value))?.name ?? String(value) : String(value)
        case .boolean, .plain: String(value)
        }
    }

    /// A duration in milliseconds: "2s", "500ms", "1m".
    static func duration(milliseconds: UInt64) -> String {
        render(milliseconds, as: .milliseconds)
    }

    /// A window width: whole milliseconds as a duration, anything finer in microseconds.
    static func duration(nanoseconds: UInt64) -> String {
        if nanoseconds % 1_000_000 == 0 { return duration(milliseconds: nanoseconds / 1_000_000) }
        return render(nanoseconds / 1000, as: .microseconds)
    }

    private static func time(_ value: UInt64, units: [(UInt64, String)], base: String) -> String {
        guard value > 0 else { return "0" }
        for (size, name) in units where value % size == 0 { return "\(value / size)\(name)" }
        return "\(value)\(base)"
    }

    private static func firstExact(_ value: UInt64, _ units: [(UInt64, String)]) -> String {
        guard value > 0 else { return "0" }
        for (size, name) in units where value % size == 0 { return "\(value / size)\(name)" }
        return String(value)
    }

    /// value / 10^places, without trailing zeros: 1500000 with 6 places is "1.5".
    static func decimal(_ value: UInt64, places: Int) -> String {
        var divisor: UInt64 = 1
        for _ in 0..<places { divisor *= 10 }
        let whole = value / divisor, fraction = value % divisor
        guard fraction > 0 else { return String(whole) }
        var digits = String(fraction)
        digits = String(repeating: "0", count: places - digits.count) + digits
        while digits.hasSuffix("0") { digits.removeLast() }
        return "\(whole).\(digits)"
    }
}
