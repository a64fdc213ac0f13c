/// `--fields rtt,snd_cwnd,...`: the `tcp_info` fields a notification line carries. Fewer fields make
/// shorter lines and a faster writer (BENCHMARKS.md, "JSON encoding").
public enum TCPInfoFieldSelection {
    /// A comma-separated list of field names (`tcpnotify fields`), in any order, each at most once. The
    /// lines keep the contract's order whatever the list's.
    public static func parse(_ list: String) throws(SelectionError) -> TCPInfoFieldSet {
        var chosen = Set<TCPInfoField>()
        let names = list.split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: " \t") }
        for name in names {
            guard !name.isEmpty else {
                throw SelectionError(description: "--fields: empty field name in '\(list)'; give names separated by commas, e.g. --fields rtt,snd_cwnd")
            }
            guard let field = TCPInfoField.named(name) else {
                let suggestion = TCPInfoField.nearest(to: name).map { " (did you mean '\($0.name)'?)" } ?? ""
                throw SelectionError(description: "--fields: unknown field '\(name)'\(suggestion); valid names: "
                    + TCPInfoField.allCases.map(\.name).joined(separator: ", "))
            }
            guard chosen.insert(field).inserted else {
                throw SelectionError(description: "--fields: '\(name)' is given twice")
            }
        }
        return TCPInfoFieldSet(missing: Set(TCPInfoField.allCases).subtracting(chosen))
    }

    public struct SelectionError: Error, Sendable, CustomStringConvertible {
        public let description: String
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in characters: String) -> String {
        let set = Set(characters)
        return String(drop(while: set.contains).reversed().drop(while: set.contains).reversed())
    }
}
