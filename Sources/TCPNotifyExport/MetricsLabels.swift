/// Labels that `--metrics-labels` can add to `tcpnotify_notifications_total` and
/// `tcpnotify_diagnoses_total`, beyond `rule`, `trigger` and `bottleneck`. Each value of each label is a
/// time series of its own in Prometheus (a few KiB of memory there per series, and per scrape), so none
/// is on by default; `cardinality` says what each one costs.
public enum MetricsLabel: String, CaseIterable, Sendable, Comparable {
    case remotePort = "remote_port"
    case localPort = "local_port"
    case remoteAddress = "remote_address"
    case cgroup
    case container
    case pod

    /// How many series the label can make, for `--help` and the README.
    public var cardinality: String {
        switch self {
        case .remotePort: "one series per remote port seen: small for clients of a few services, large on a server (every client's ephemeral port)"
        case .localPort: "one series per local port seen: small on a server (its listening ports), large on a client (ephemeral ports)"
        case .remoteAddress: "one series per peer address: as many as the hosts you talk to; avoid on public-facing servers"
        case .cgroup: "one series per cgroup with notifying sockets: about one per service or container"
        case .container: "one series per container with notifying sockets (empty for sockets outside containers)"
        case .pod: "one series per Kubernetes pod with notifying sockets (empty outside pods)"
        }
    }

    public static func < (a: Self, b: Self) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    /// A comma-separated allow-list (`remote_port,cgroup`), in canonical order without duplicates.
    /// Unknown names are errors naming the valid ones.
    public static func parseList(_ text: String) throws(MetricsOptionError) -> [MetricsLabel] {
        var labels = Set<MetricsLabel>()
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let name = item.trimmingSpaces()
            if name.isEmpty { continue }
            guard let label = MetricsLabel(rawValue: name) else {
                throw MetricsOptionError(
                    "invalid --metrics-labels: unknown label '\(name)'; give a comma-separated list of "
                        + allCases.map(\.rawValue).joined(separator: ", ")
                        + " (rule and trigger are always there; there is no per-connection label by design)")
            }
            labels.insert(label)
        }
        return labels.sorted()
    }
}

/// A `--metrics-*` option that does not parse: the message says what is wrong (exit code 2).
public struct MetricsOptionError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension Substring {
    func trimmingSpaces() -> String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
