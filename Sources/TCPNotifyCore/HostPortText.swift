/// `HOST:PORT`, `[V6]:PORT`, `:PORT` or `PORT` split into its parts, as the options that take an address
/// write it (`--metrics-address`, the lab's `--to`). Each caller checks the parts and says what is wrong
/// in its own words.
public struct HostPortText: Sendable, Equatable {
    /// nil for `PORT` or `:PORT`; without brackets for `[V6]:PORT`.
    public var host: Substring?
    public var port: Substring

    public enum Problem: Error, Sendable, Equatable {
        /// `[` without `]`.
        case unclosedBracket
        /// Something else than `:PORT` after `]`.
        case noPortAfterBracket
        /// More than one `:` outside brackets: an IPv6 address written without them.
        case bareIPv6
    }

    public init(_ text: String) throws(Problem) {
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw .unclosedBracket }
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":") else { throw .noPortAfterBracket }
            host = text[text.index(after: text.startIndex)..<close]
            port = rest.dropFirst()
        } else if let colon = text.lastIndex(of: ":") {
            guard text.firstIndex(of: ":") == colon else { throw .bareIPv6 }
            host = text[..<colon].isEmpty ? nil : text[..<colon]
            port = text[text.index(after: colon)...]
        } else {
            host = nil
            port = Substring(text)
        }
    }
}
