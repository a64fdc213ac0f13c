import Foundation
import Prometheus
import Synchronization
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyExport
import TCPNotifyRuntime

/// `serve --history`: the records of the history subscription (every connection its filter selects,
/// sampled like `diagnose` does) judged by a `DiagnosisTracker` and kept in a bounded
/// `ConnectionHistory`; answers queries from the subscriber socket and from /connections. Thread-safe.
package final class ConnectionHistoryRecorder: Sendable {
    package typealias History = ConnectionHistory<SocketNotification, Diagnosis>

    /// The history subscription's rule: a record per connection at most every 500 ms (at its TCP
    /// events and from the sweep), as `diagnose` samples.
    package static let samplingRule = DiagnosisConfiguration.samplingRule

    package let filter: CompiledFilter
    private let history: Mutex<History>
    private let tracker: DiagnosisTracker
    private let json: ConnectionHistoryJSON
    /// The kernel subscriber bit of the history subscription (0 until it is installed).
    private let subscriberBit = Atomic<UInt32>(0)
    private let metrics: HistoryMetrics?
    /// Counts each judged sample's verdict in `tcpnotify_diagnoses_total`, as `watch --diagnose` does.
    private let verdictCounter: NotificationMetrics?

    package init(filter: CompiledFilter, limits: History.Limits, registry: PrometheusCollectorRegistry?,
                 verdictCounter: NotificationMetrics? = nil) {
        self.verdictCounter = verdictCounter
        self.filter = filter
        history = Mutex(History(limits: limits))
        tracker = DiagnosisTracker(maximumFlows: limits.maximumConnections)
        var formatter = NotificationFormatter(format: .json, ruleNames: [], realtimeOffsetNanoseconds: Clocks.realtimeOffsetNanoseconds())
        formatter.kernelFields = KernelInfo.tcpInfoFields
        formatter.cgroupAttribution = CgroupPaths.system()?.resolver
        json = ConnectionHistoryJSON(formatter: formatter)
        metrics = registry.map(HistoryMetrics.init)
    }

    package var limits: History.Limits { history.withLock { $0.limits } }
    package var counters: History.Counters { history.withLock { $0.counters } }
    package var connectionCount: Int { history.withLock { $0.count } }

    /// Installs the history subscription in a free subscriber slot and enrolls the existing connections
    /// it selects. On the kernel's queue (`KernelOwner.runSync`).
    package func install(in program: any SubscriberTables, hub: SubscriptionHub) throws -> (slot: Int, existing: UInt64) {
        let rules = try RuleExpression.compile([Self.samplingRule])
        guard let slot = program.freeSubscriberSlot(from: 1) else { throw BPFError.invalidArgument("no free subscriber slot for --history") }
        var next = program.subscriptions
        next[slot] = Subscription(filter: filter, rules: rules)
        hub.recordNextGeneration(program.ruleGeneration &+ 1, try next.tables())
        try program.apply(next, forceNewRules: true)
        subscriberBit.store(UInt32(1) << UInt32(slot), ordering: .releasing)
        let existing = (try? program.enrollExisting(in: NetworkNamespaces.all(), subscribers: UInt32(1) << UInt32(slot)))?.enrolled ?? 0
        return (slot, existing)
    }

    /// Whether a record is the history subscription's.
    package func wants(_ notification: SocketNotification) -> Bool {
        notification.subscribers & subscriberBit.load(ordering: .acquiring) != 0
    }

    /// Whether no other subscriber wants the record.
    package func isOnlyHistorys(_ notification: SocketNotification) -> Bool {
        notification.subscribers & ~subscriberBit.load(ordering: .acquiring) == 0
    }

    /// Judges and keeps records (on the ring reader's thread).
    package func record(_ batch: [SocketNotification]) {
        guard !batch.isEmpty else { return }
        var verdicts: [(UInt64, Diagnosis?)] = []
        for notification in batch {
            tracker.record(notification)
            let verdict = tracker.diagnosis(cookie: notification.cookie)
            if let verdict { verdictCounter?.record(verdict, for: notification) }
            verdicts.append((notification.cookie, verdict))
            if notification.trigger == .close { tracker.forget(cookie: notification.cookie) }
        }
        let now = MonotonicClock.nanoseconds()
        history.withLock { history in
            for (notification, (cookie, verdict)) in zip(batch, verdicts) {
                let time = notification.monotonicNanoseconds
                history.record(notification, cookie: cookie, isClose: notification.trigger == .close, nowNanoseconds: time)
                if let verdict { history.verdict(verdict, cookie: cookie, nowNanoseconds: time) { $0.bottleneck == $1.bottleneck } }
            }
            history.expire(nowNanoseconds: now)
        }
    }

    package enum Answer {
        case found(String)
        case unknown(String)
    }

    /// The JSON reply to a query: every connection, or one (`unknown` when it is not held).
    package func answer(_ query: ConnectionQuery) -> Answer {
        let now = MonotonicClock.nanoseconds()
        return history.withLock { history in
            history.expire(nowNanoseconds: now)
            guard let cookie = query.cookie else {
                return .found(json.reply(history.all, counters: history.counters, held: history.count))
            }
            guard let entry = history.entry(cookie: cookie) else {
                let retention = TimeSpan(nanoseconds: history.limits.retentionNanoseconds)
                return .unknown("no connection with cookie \(cookie): never selected by --history, evicted, or closed more than \(retention) ago")
            }
            return .found(json.reply([entry], counters: history.counters, held: history.count))
        }
    }

    /// `GET /connections` and `GET /connections/COOKIE`: 200, 400 (not a cookie) or 404 (not held), JSON.
    package func httpReply(path: String) -> MetricsHTTPServer.Reply? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].isEmpty, parts[1] == "connections" else { return nil }
        func reply(_ status: Int, _ body: String) -> MetricsHTTPServer.Reply {
            MetricsHTTPServer.Reply(status: status, body: Array((body + "\n").utf8))
        }
        var query = ConnectionQuery()
        if parts.count == 3 || (parts.count == 4 && parts[3].isEmpty) {
            guard let cookie = ConnectionQuery.cookie(fromPath: parts[2]) else {
                return reply(400, SubscriberProtocol.errorLine("'\(parts[2])' is not a socket cookie: give its decimal number, e.g. /connections/4099"))
            }
            query.cookie = cookie
        } else if parts.count != 2 {
            return nil
        }
        switch answer(query) {
        case .found(let body): return reply(200, body)
        case .unknown(let message): return reply(404, SubscriberProtocol.errorLine(message))
        }
    }

    /// Reads the held connections (after expiring the closed ones past the retention) under the lock.
    func withEntries<Result: Sendable>(_ body: ([History.Entry]) -> Result) -> Result {
        let now = MonotonicClock.nanoseconds()
        return history.withLock { history in
            history.expire(nowNanoseconds: now)
            return body(history.all)
        }
    }

    /// Brings /metrics up to date (before each scrape).
    package func refreshMetrics() {
        let (held, counters) = history.withLock { ($0.count, $0.counters) }
        metrics?.update(held: held, counters: counters)
    }
}

/// `tcpnotify_history_*` on /metrics.
package final class HistoryMetrics: Sendable {
    private let held: Gauge
    private let evictedConnections: Counter, evictedVerdicts: Counter, expired: Counter
    private let reported = Mutex(ConnectionHistory<SocketNotification, Diagnosis>.Counters())

    package init(registry: PrometheusCollectorRegistry) {
        func counter(_ name: String, _ help: String) -> Counter {
            registry.makeCounter(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help))
        }
        held = registry.makeGauge(descriptor: MetricNameDescriptor(
            metricName: "tcpnotify_history_connections", unitName: "", helpText: "Connections serve --history holds now."))
        evictedConnections = counter("tcpnotify_history_evicted_connections_total",
                                     "Connections dropped from the history for --history-connections, least recently updated first.")
        evictedVerdicts = counter("tcpnotify_history_evicted_verdicts_total",
                                  "Verdicts dropped from a connection's history for --history-verdicts, oldest first.")
        expired = counter("tcpnotify_history_expired_connections_total",
                          "Closed connections dropped from the history after --history-retention.")
    }

    package func update(held count: Int, counters: ConnectionHistory<SocketNotification, Diagnosis>.Counters) {
        held.set(Double(count))
        reported.withLock { last in
            func advance(_ counter: Counter, _ now: UInt64, _ before: UInt64) {
                if now > before { counter.increment(by: Int64(clamping: now - before)) }
            }
            advance(evictedConnections, counters.evictedConnections, last.evictedConnections)
            advance(evictedVerdicts, counters.evictedVerdicts, last.evictedVerdicts)
            advance(expired, counters.expiredConnections, last.expiredConnections)
            last = counters
        }
    }
}
