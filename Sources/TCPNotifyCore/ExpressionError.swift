/// A problem in a filter or rule expression, with where it is: renders like a compiler diagnostic.
///
///     unknown field 'rtvar'; did you mean 'rttvar'?
///       rtvar > 10000
///       ^~~~~
public struct ExpressionError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    /// The expression the error is about (one `--filter` or `--when` string).
    public var input: String
    /// Offset of the problem in `input`, in Characters; `input.count` means "at the end".
    public var position: Int
    /// How many Characters the caret underlines (at least one is drawn).
    public var length: Int
    /// Optional advice printed under the caret.
    public var hint: String?

    public init(message: String, input: String, position: Int, length: Int = 1, hint: String? = nil) {
        self.message = message
        self.input = input
        self.position = position
        self.length = length
        self.hint = hint
    }

    public var description: String {
        // Tabs and newlines would break the caret's alignment; each is one Character, so a space keeps it.
        let characters = input.map { $0.isNewline || $0 == "\t" ? " " : $0 }
        let start = max(0, min(position, characters.count))
        var lines = [message]
        if !characters.isEmpty {
            // Long expressions: show about 80 characters around the problem.
            let window = characters.count > 100
                ? max(0, start - 40)..<min(characters.count, max(0, start - 40) + 80)
                : 0..<characters.count
            let lead = window.lowerBound > 0 ? "..." : ""
            let trail = window.upperBound < characters.count ? "..." : ""
            let underline = max(1, min(length, window.upperBound - start))
            lines.append("  " + lead + String(characters[window]) + trail)
            lines.append("  " + String(repeating: " ", count: lead.count + start - window.lowerBound)
                         + "^" + String(repeating: "~", count: underline - 1))
        }
        if let hint { lines.append("  hint: " + hint) }
        return lines.joined(separator: "\n")
    }
}
