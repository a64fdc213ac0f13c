/// Numbers for the page and its SVG, without Foundation's String(format:): fixed decimals, and axis
/// ticks on round values (1, 2, 5 × 10^k).
enum ReportNumber {
    /// `value` with `decimals` digits after the point ("12.35"); non-finite values print as "0".
    static func fixed(_ value: Double, decimals: Int) -> String {
        guard value.isFinite else { return "0" }
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        guard scaled < 9e15 else { return value < 0 ? "-\(Int64(abs(value)))" : "\(Int64(value))" }
        let whole = Int64(scaled) / Int64(scale), fraction = Int64(scaled) % Int64(scale)
        let sign = value < 0 && scaled > 0 ? "-" : ""
        guard decimals > 0 else { return sign + "\(whole)" }
        var digits = String(fraction)
        while digits.count < decimals { digits = "0" + digits }
        return sign + "\(whole).\(digits)"
    }

    /// An SVG coordinate: one decimal place is finer than a pixel.
    static func coordinate(_ value: Double) -> String {
        let text = fixed(value, decimals: 1)
        return text.hasSuffix(".0") ? String(text.dropLast(2)) : text
    }

    /// A tick label: as few decimals as the step needs.
    static func tick(_ value: Double, step: Double) -> String {
        var decimals = 0
        var probe = step
        while decimals < 6 && abs(probe - probe.rounded()) > 1e-9 * max(1, abs(probe)) {
            probe *= 10
            decimals += 1
        }
        return fixed(value, decimals: decimals)
    }

    /// Round tick values covering 0...max (about `count` of them); the last is at or above `max`.
    static func ticks(upTo maximum: Double, count: Int = 4) -> [Double] {
        let top = maximum.isFinite && maximum > 0 ? maximum : 1
        let step = niceStep(top / Double(max(count, 1)))
        var ticks: [Double] = []
        var value = 0.0
        while ticks.count < 50 {
            ticks.append(value)
            if value >= top * (1 - 1e-9) { break }
            value += step
        }
        return ticks
    }

    /// The smallest of 1, 2, 5 × 10^k at or above `raw`.
    static func niceStep(_ raw: Double) -> Double {
        guard raw.isFinite, raw > 0 else { return 1 }
        var magnitude = 1.0
        while magnitude * 10 <= raw { magnitude *= 10 }
        while magnitude > raw { magnitude /= 10 }
        for factor in [1.0, 2.0, 5.0, 10.0] where factor * magnitude >= raw * (1 - 1e-12) { return factor * magnitude }
        return 10 * magnitude
    }
}

/// Maps a domain interval onto pixels from `start` to `end` (linear; `end` may be below `start`, as for a y
/// axis growing upwards). Values outside the domain are clamped; a degenerate domain maps to `start`.
struct LinearScale {
    var domain: ClosedRange<Double>
    var start: Double
    var end: Double

    func callAsFunction(_ value: Double) -> Double {
        let width = domain.upperBound - domain.lowerBound
        guard width > 0, value.isFinite else { return start }
        let clamped = min(max(value, domain.lowerBound), domain.upperBound)
        return start + (clamped - domain.lowerBound) / width * (end - start)
    }
}
