/// Numbers as summaries write them.
enum DiagnosisText {
    /// A share 0...1 as a whole percentage, or with one decimal below 10 %: "99%", "2.5%".
    static func percent(_ share: Double) -> String {
        let percent = share * 100
        if percent >= 10 || percent == 0 { return "\(Int(percent.rounded()))%" }
        let tenths = Int((percent * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)%"
    }

    static func seconds(_ microseconds: Double) -> String {
        let tenths = Int((microseconds / 100_000).rounded())
        return "\(tenths / 10).\(tenths % 10) s"
    }

    static func time(_ microseconds: Double) -> String { Units.microseconds(UInt64(max(microseconds, 0))) }

    static func ratio(_ value: Double) -> String {
        if value >= 10 { return String(Int(value.rounded())) }
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }
}
