import Synchronization
import TCPNotifyCore

/// One connection that `serve --history` holds, as the per-connection series see it.
public struct ConnectionSeriesSample: Sendable, Equatable {
    public var cookie: UInt64
    public var local: String
    public var remote: String
    /// The current verdict and how long it has held (its span's first record to now).
    public var bottleneck: Bottleneck?
    public var verdictSeconds: Double
    /// The last record matches the `stalled` preset (`retransmits >= 3 or probes >= 3`).
    public var stalled: Bool

    public init(cookie: UInt64, local: String, remote: String, bottleneck: Bottleneck?, verdictSeconds: Double, stalled: Bool) {
        self.cookie = cookie
        self.local = local
        self.remote = remote
        self.bottleneck = bottleneck
        self.verdictSeconds = verdictSeconds
        self.stalled = stalled
    }

    /// Worth a series of its own: stalled, or a verdict that names a problem.
    var isReported: Bool { stalled || bottleneck.map(ConnectionSeries.problemVerdicts.contains) == true }

    /// Lower sorts first: stalls, then loss, bufferbloat, the window and buffer limits; the longest-held first.
    var priority: (Int, Double) {
        let rank = stalled ? 0 : 1 + (bottleneck.flatMap { ConnectionSeries.problemVerdicts.firstIndex(of: $0) } ?? 99)
        return (rank, -verdictSeconds)
    }
}

/// The per-connection series on /metrics: only for connections a rule selected (`serve --history
/// FILTER`), only while they are stalled or have a problem verdict, and at most `maximumConnections` of
/// them per scrape (the worst first). The rest are counted, so a dashboard shows what is missing:
/// `tcpnotify_connection_series_left_out` (this scrape) and `..._left_out_total` (connections ever
/// left out, each once while it is held). Prometheus keeps a series per label set, so this bound is
/// what protects it. Thread-safe.
public final class ConnectionSeries: Sendable {
    public static let defaultMaximumConnections = 100

    /// The verdicts that get a series, most urgent first.
    public static let problemVerdicts: [Bottleneck] = [
        .packetLoss, .bufferbloat, .receiverWindowLimited, .readerLimited, .sendBufferLimited,
    ]

    public enum Name {
        public static let verdict = "tcpnotify_connection_verdict_seconds"
        public static let stalled = "tcpnotify_connection_stalled"
        public static let exported = "tcpnotify_connection_series"
        public static let leftOut = "tcpnotify_connection_series_left_out"
        public static let leftOutTotal = "tcpnotify_connection_series_left_out_total"
    }

    public let maximumConnections: Int
    private let source: @Sendable () -> [ConnectionSeriesSample]
    private let state = Mutex(LeftOut())

    private struct LeftOut {
        var total: UInt64 = 0
        /// Cookies already counted in `total`, pruned to the ones still reported.
        var counted: Set<UInt64> = []
    }

    public init(maximumConnections: Int = defaultMaximumConnections, source: @escaping @Sendable () -> [ConnectionSeriesSample]) {
        self.maximumConnections = max(0, maximumConnections)
        self.source = source
    }

    /// The series' text exposition, from the connections held now.
    public func exposition() -> String { render(source()) }

    func render(_ samples: [ConnectionSeriesSample]) -> String {
        let reported = samples.filter(\.isReported).sorted { $0.priority < $1.priority }
        let kept = reported.prefix(maximumConnections)
        let left = reported.dropFirst(maximumConnections)
        let total = state.withLock { state -> UInt64 in
            for sample in left where state.counted.insert(sample.cookie).inserted { state.total += 1 }
            state.counted.formIntersection(reported.map(\.cookie))
            return state.total
        }
        var text = header(Name.verdict, "gauge", "Seconds a connection selected by serve --history has held its current problem verdict (label bottleneck).")
        for sample in kept {
            guard let bottleneck = sample.bottleneck, Self.problemVerdicts.contains(bottleneck) else { continue }
            text += "\(Name.verdict){\(labels(sample)),bottleneck=\"\(bottleneck.rawValue)\"} \(format(sample.verdictSeconds))\n"
        }
        text += header(Name.stalled, "gauge", "1 while a connection selected by serve --history is stalled (its last record: retransmits >= 3 or probes >= 3).")
        for sample in kept where sample.stalled { text += "\(Name.stalled){\(labels(sample))} 1\n" }
        text += header(Name.exported, "gauge", "Connections with per-connection series in this scrape (at most --metrics-connections).")
        text += "\(Name.exported) \(kept.count)\n"
        text += header(Name.leftOut, "gauge", "Stalled or problem connections left out of this scrape: more than --metrics-connections.")
        text += "\(Name.leftOut) \(left.count)\n"
        text += header(Name.leftOutTotal, "counter", "Connections left out of the per-connection series at least once (each counted once while held).")
        text += "\(Name.leftOutTotal) \(total)\n"
        return text
    }

    private func header(_ name: String, _ type: String, _ help: String) -> String {
        "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
    }

    private func labels(_ sample: ConnectionSeriesSample) -> String {
        "cookie=\"\(sample.cookie)\",local=\"\(escaped(sample.local))\",remote=\"\(escaped(sample.remote))\""
    }

    private func format(_ seconds: Double) -> String {
        String((max(0, seconds) * 1000).rounded() / 1000)
    }

    /// Label values escape backslash, quote and line feed (the text format's rules).
    private func escaped(_ value: String) -> String {
        var text = ""
        for character in value {
            switch character {
            case "\\": text += "\\\\"
            case "\"": text += "\\\""
            case "\n": text += "\\n"
            default: text.append(character)
            }
        }
        return text
    }
}
