/// Short, fixed-width texts for `tcpnotify top`'s cells: every number fits in at most 6 characters, so a
/// column's width never depends on the data. ASCII only (a terminal over ssh may not be UTF-8).
public enum TopText {
    /// `text` cut or padded to exactly `width` characters; a cut text ends with "~" so it does not pass for
    /// a whole one.
    public static func fit(_ text: String, _ width: Int, rightAligned: Bool = false) -> String {
        guard width > 0 else { return "" }
        let count = text.count
        if count > width { return width == 1 ? "~" : String(text.prefix(width - 1)) + "~" }
        let padding = String(repeating: " ", count: width - count)
        return rightAligned ? padding + text : text + padding
    }

    /// `text` cut to at most `width` characters (a status line: no padding).
    public static func clip(_ text: String, _ width: Int) -> String {
        text.count > width ? fit(text, width) : text
    }

    /// A count: 12, 9999, 12.3k, 4.5M, 7.1G.
    public static func count(_ value: UInt64) -> String {
        value < 10_000 ? String(value) : scaled(Double(value), units: ["k", "M", "G", "T"], base: 1000)
    }

    /// Bytes per second: 0, 950, 12.3k, 118M, 1.2G (bytes; the header says so).
    public static func rate(bytesPerSecond value: Double) -> String {
        guard value >= 0.5 else { return "0" }
        return value < 1000 ? String(Int(value.rounded())) : scaled(value, units: ["k", "M", "G", "T"], base: 1000)
    }

    /// A time in microseconds: 45us, 1.2ms, 230ms, 1.5s, 12s.
    public static func microseconds(_ value: UInt64) -> String {
        if value < 1000 { return "\(value)us" }
        if value < 1_000_000 { return decimal(Double(value) / 1000) + "ms" }
        return decimal(Double(value) / 1_000_000) + "s"
    }

    /// How long something held: 0s, 45s, 12m05s, 3h20m, 2d04h.
    public static func held(nanoseconds: UInt64) -> String {
        let seconds = nanoseconds / 1_000_000_000
        if seconds < 60 { return "\(seconds)s" }
        if seconds < 3600 { return "\(seconds / 60)m" + twoDigits(seconds % 60) + "s" }
        if seconds < 86400 { return "\(seconds / 3600)h" + twoDigits(seconds / 60 % 60) + "m" }
        return "\(seconds / 86400)d" + twoDigits(seconds / 3600 % 24) + "h"
    }

    /// A clock time of day, HH:MM:SS (UTC or local, as the caller computed `secondsOfDay`).
    public static func clock(secondsOfDay: Int) -> String {
        let value = max(secondsOfDay, 0) % 86400
        return twoDigits(UInt64(value / 3600)) + ":" + twoDigits(UInt64(value / 60 % 60)) + ":" + twoDigits(UInt64(value % 60))
    }

    /// One decimal below 10, none above: 1.2, 12, 230.
    static func decimal(_ value: Double) -> String {
        if value < 9.95 {
            let tenths = Int((value * 10).rounded())
            return "\(tenths / 10).\(tenths % 10)"
        }
        return String(Int(value.rounded()))
    }

    private static func scaled(_ value: Double, units: [String], base: Double) -> String {
        var value = value / base
        for unit in units {
            if value.rounded() < base || unit == units.last { return decimal(value) + unit }
            value /= base
        }
        return decimal(value)
    }

    private static func twoDigits(_ value: UInt64) -> String { value < 10 ? "0\(value)" : String(value) }
}
