import ArgumentParser
import TCPNotifyCore
import TCPNotifyExport
import TCPNotifyServer

/// `serve --history`: which connections the daemon remembers, and its memory bounds.
struct HistoryOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "Remember the connections this filter selects (ss style; 'all' for every one): each one's last record and recent verdicts, sampled like `diagnose` (a record at most every 500 ms), answered at GET /connections[/COOKIE] next to /metrics and by {\"type\":\"connections\"} on the socket. (default: off)",
        valueName: "filter"))
    var history: String?

    @Option(name: .long, help: "Connections remembered at most; beyond, the least recently updated is evicted (counted). (default: \(Self.defaultConnections))")
    var historyConnections: Int?

    @Option(name: .long, help: "Verdict changes remembered per connection; beyond, the oldest goes (counted). (default: \(Self.defaultVerdicts))")
    var historyVerdicts: Int?

    @Option(name: .long, parsing: .unconditional,
            help: ArgumentHelp("How long a closed connection stays queryable (30s, 10m, 1h). (default: \(Self.defaultRetention))", valueName: "duration"),
            transform: DurationOption.historyRetention)
    var historyRetention: TimeSpan?

    @Option(name: .long, help: "Per-connection series on /metrics at most (of the --history connections that are stalled or have a problem verdict, worst first); the rest are counted in tcpnotify_connection_series_left_out. 0: none. (default: \(ConnectionSeries.defaultMaximumConnections))")
    var metricsConnections: Int?

    static let defaultConnections = 4096
    static let defaultVerdicts = 8
    static let maximumConnections = 1_000_000
    static let maximumVerdicts = 1024
    static let maximumMetricsConnections = 10_000
    static let defaultRetention = TimeSpan(nanoseconds: 600_000_000_000, text: "10m")

    func check() throws {
        if history == nil, historyConnections != nil || historyVerdicts != nil || historyRetention != nil || metricsConnections != nil {
            throw ValidationError("--history-connections, --history-verdicts, --history-retention and --metrics-connections need --history FILTER (or --history all)")
        }
        if let count = metricsConnections, !(0...Self.maximumMetricsConnections).contains(count) {
            throw ValidationError("--metrics-connections must be from 0 to \(Self.maximumMetricsConnections) (each is a Prometheus series), not \(count)")
        }
        if let count = historyConnections, !(1...Self.maximumConnections).contains(count) {
            throw ValidationError("--history-connections must be from 1 to \(Self.maximumConnections), not \(count)")
        }
        if let count = historyVerdicts, !(1...Self.maximumVerdicts).contains(count) {
            throw ValidationError("--history-verdicts must be from 1 to \(Self.maximumVerdicts), not \(count)")
        }
    }

    /// The compiled filter and bounds; nil without --history. Throws the filter's error.
    func resolve() throws -> (filter: CompiledFilter, limits: ConnectionHistoryRecorder.History.Limits)? {
        guard let history else { return nil }
        let filter = try FilterExpression.compile(history == "all" ? "" : history)
        let limits = ConnectionHistoryRecorder.History.Limits(
            maximumConnections: historyConnections ?? Self.defaultConnections, maximumVerdicts: historyVerdicts ?? Self.defaultVerdicts,
            retentionNanoseconds: (historyRetention ?? Self.defaultRetention).nanoseconds)
        return (filter, limits)
    }
}
