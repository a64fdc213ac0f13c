/// A built-in rule that encodes what an expert would look for; `--when NAME` or `--when preset:NAME`.
public struct RulePreset: Sendable, Equatable {
    public var name: String
    /// The condition and its controls, in the rule language.
    public var expression: String
    /// One line on what it catches.
    public var summary: String

    /// The `--when` string it stands for.
    public var text: String { "\(name)=\(expression)" }
}

public enum RulePresets {
    /// Together they fit the kernel table (3 windows, 1 timed rule, 11 operands); a test checks it.
    public static let all: [RulePreset] = [
        RulePreset(
            name: "bufferbloat", expression: "queue_delay > 20ms and rtt_inflation > 4 for 2s",
            summary: "queues add over 20 ms and the RTT is over 4x its minimum, for 2 s straight"),
        RulePreset(
            // The byte share alone trips on a young connection's first lost segment: it needs 1 MB sent.
            name: "lossy", expression: "increase(total_retrans, 1s) > 16 or retrans_rate > 2% and bytes_sent > 1MB",
            summary: "over 16 segments retransmitted within a second, or over 2% of the bytes once 1 MB is sent"),
        RulePreset(
            name: "stalled", expression: "retransmits >= 3 or probes >= 3",
            summary: "three RTOs in a row without progress, or three unanswered zero-window/keepalive probes"),
        RulePreset(
            name: "receiver-limited", expression: "increase(rwnd_limited, 1s) > 500ms",
            summary: "the peer's receive window held sending back for over half of the last second"),
        RulePreset(
            name: "sender-limited", expression: "increase(sndbuf_limited, 1s) > 500ms",
            summary: "our send buffer held sending back for over half of the last second"),
        RulePreset(
            name: "app-limited", expression: "busy_pct < 20% and age > 5s",
            summary: "older than 5 s and data was in flight less than 20% of the time: the application is the bottleneck"),
    ]

    /// The preset with this name; case, '_' for '-' and a `preset:` prefix are tolerated.
    public static func named(_ name: String) -> RulePreset? {
        var key = String(name.lowercased().map { $0 == "_" ? "-" : $0 })
        if key.hasPrefix("preset:") { key.removeFirst(7) }
        return all.first { $0.name == key }
    }

    /// A `--when` string that is a preset (`bufferbloat`, `preset:lossy`) becomes `NAME=EXPRESSION`;
    /// anything else is returned as it is.
    static func expand(_ text: String) throws(ExpressionError) -> String {
        // Most rules have an operator or a space inside: not a lone word, nothing to look up.
        let inner = text.utf8.drop { $0 == UInt8(ascii: " ") }.reversed().drop { $0 == UInt8(ascii: " ") }
        guard inner.allSatisfy({ $0 > UInt8(ascii: " ") && $0 < 0x80 }) else { return text }
        let characters = Array(text)
        guard let first = characters.firstIndex(where: { !$0.isWhitespace }),
              let last = characters.lastIndex(where: { !$0.isWhitespace }) else { return text }
        let word = String(characters[first...last])
        if word.lowercased().hasPrefix("preset:") {
            guard let preset = named(word) else {
                let name = String(word.dropFirst(7))
                let suggestion = NameSuggestion.nearest(to: name, among: all, name: \.name)
                throw ExpressionError(
                    message: "unknown preset '\(name)'" + (suggestion.map { "; did you mean '\($0.name)'?" } ?? ""),
                    input: text, position: first + 7, length: max(1, name.count),
                    hint: "presets: " + all.map(\.name).joined(separator: ", "))
            }
            return preset.text
        }
        // A lone word that is also a field (`delivery_rate_app_limited`) stays a condition.
        guard word.allSatisfy({ ExpressionLexer.isWordCharacter($0, dialect: .rule) }),
              !RuleTermParser.isOperandName(word.lowercased()), let preset = named(word) else { return text }
        return preset.text
    }
}
