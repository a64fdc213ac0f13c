import Prometheus
import Synchronization
import TCPNotifyCore

/// The metrics of one `watch` (or `serve`) run, in Prometheus' text format. Fed by the notifications
/// as they are delivered (`record`), by the kernel's counters when scraped (`update`), and by whoever
/// delivers records to subscribers (`recordSubscriberDrops`). Thread-safe.
///
/// No label identifies a connection: a 4-tuple or cookie label would make one series per connection,
/// which no Prometheus survives. `labels` (the `--metrics-labels` allow-list) adds coarser ones, each at
/// the cost `MetricsLabel.cardinality` states, and at most `maxLabelSetsPerMetric` label sets per metric
/// are kept: beyond it the opt-in values read `other` and `tcpnotify_metrics_label_overflow_total` counts.
public final class NotificationMetrics: Sendable {
    public static let maxLabelSetsPerMetric = 10_000

    public let registry: PrometheusCollectorRegistry
    public let labels: [MetricsLabel]
    private let attribution: (@Sendable (UInt64) -> CgroupAttribution?)?
    private let state = Mutex(State())

    private struct State {
        /// The last kernel totals, to turn them into counter increments.
        var last = WatchStatistics()
        var lastRunTimeNanoseconds: UInt64 = 0
        var lastRunCount: UInt64 = 0
        /// Opt-in label sets seen, per metric name.
        var labelSets: [String: Set<[String]>] = [:]
        /// Programs already reported as degraded (a few at most: one per optional program).
        var degradedPrograms: Set<String> = []
    }

    private enum Name {
        static let notifications = "tcpnotify_notifications_total"
        static let diagnoses = "tcpnotify_diagnoses_total"
        static let subscriberDrops = "tcpnotify_subscriber_drops_total"
        static let overflow = "tcpnotify_metrics_label_overflow_total"
    }

    private let events: Counter, established: Counter, enrolled: Counter, existingEnrolled: Counter
    private let ringDrops: Counter, userDrops: Counter, sweeps: Counter
    private let runTime: Counter, runCount: Counter, overflow: Counter
    private let watchedSockets: Gauge
    private let pushMode: Gauge, pollMode: Gauge, degradedCount: Gauge
    private let connectionSeries = Mutex<ConnectionSeries?>(nil)

    /// `cgroupAttribution` resolves cgroup ids for the `cgroup`, `container` and `pod` labels
    /// (`CgroupPaths.resolver`); without it those labels read `unknown`.
    public init(labels: [MetricsLabel] = [], cgroupAttribution: (@Sendable (UInt64) -> CgroupAttribution?)? = nil) {
        self.labels = Array(Set(labels)).sorted()
        self.attribution = cgroupAttribution
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        func counter(_ name: String, _ help: String) -> Counter {
            registry.makeCounter(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help))
        }
        events = counter("tcpnotify_events_total", "Rule checks on watched sockets (TCP events that reached the rules; polls in poll mode).")
        established = counter("tcpnotify_established_total", "Connections seen at establishment.")
        enrolled = counter("tcpnotify_enrolled_total", "Connections enrolled (selected by the filter and tuples), existing ones included.")
        existingEnrolled = counter("tcpnotify_existing_enrolled_total", "Connections established before the start and enrolled by the iterator.")
        ringDrops = counter("tcpnotify_ring_drops_total", "Records the kernel could not write: the ring buffer was full.")
        userDrops = counter("tcpnotify_user_drops_total", "Records received from the ring buffer but not delivered (malformed).")
        sweeps = counter("tcpnotify_sweeps_total", "Periodic sweeps over the enrolled sockets.")
        runTime = counter("tcpnotify_bpf_run_time_seconds_total", "Kernel CPU time spent in the sock_ops program (BPF run-time statistics).")
        runCount = counter("tcpnotify_bpf_run_count_total", "Runs of the sock_ops program (BPF run-time statistics).")
        overflow = counter(Name.overflow, "Records counted with opt-in label values 'other': the metric had too many label sets.")
        watchedSockets = registry.makeGauge(descriptor: MetricNameDescriptor(
            metricName: "tcpnotify_enrolled_sockets", unitName: "", helpText: "Sockets watched now (enrolled and not yet closed)."))
        let mode = MetricNameDescriptor(metricName: "tcpnotify_mode", unitName: "",
                                        helpText: "1 for how records are read now: push (BPF sock_ops) or poll (sock_diag); 0 for the other.")
        pushMode = registry.makeGauge(descriptor: mode, labels: [("mode", "push")])
        pollMode = registry.makeGauge(descriptor: mode, labels: [("mode", "poll")])
        degradedCount = registry.makeGauge(descriptor: MetricNameDescriptor(
            metricName: "tcpnotify_degraded_features", unitName: "",
            helpText: "Features this host refused (tcpnotify doctor lists them); tcpnotify_degraded_feature names each."))
    }

    public enum Mode: Sendable { case push, poll }

    /// How records are read now; the session sets it when it starts (and again if it falls back).
    public func setMode(_ mode: Mode) {
        pushMode.set(to: mode == .push ? 1.0 : 0.0)
        pollMode.set(to: mode == .poll ? 1.0 : 0.0)
    }

    /// A feature the host refused: `tcpnotify_degraded_feature{program,feature} 1`, once per program.
    public func recordDegradation(_ degradation: Degradation) {
        let new = state.withLock { $0.degradedPrograms.insert(degradation.program).inserted }
        guard new else { return }
        registry.makeGauge(
            descriptor: MetricNameDescriptor(
                metricName: "tcpnotify_degraded_feature", unitName: "",
                helpText: "1 for each feature this host refused, by program and feature (what is off, in words)."),
            labels: [("program", degradation.program), ("feature", degradation.feature)]
        ).set(to: 1.0)
        degradedCount.set(to: Double(state.withLock { $0.degradedPrograms.count }))
    }

    /// Adds the per-connection series (`serve --history`) to every scrape, capped as `series` says.
    public func setConnectionSeries(_ series: ConnectionSeries?) {
        connectionSeries.withLock { $0 = series }
    }

    /// One delivered notification: counts once per rule that fired (`rule=""` for a close record that no
    /// rule fired), with its trigger and the opt-in labels.
    public func record(_ notification: SocketNotification, ruleNames: [String]) {
        let optIn = optInLabels(notification, metric: Name.notifications)
        let fired = notification.firedRuleIndices.map { $0 < ruleNames.count ? ruleNames[$0] : "rule\($0)" }
        for rule in fired.isEmpty ? [""] : fired {
            registry.makeCounter(
                descriptor: Self.notificationsDescriptor,
                labels: [("rule", rule), ("trigger", notification.trigger.description)] + optIn
            ).increment()
        }
    }

    /// One verdict that was reported (a `watch --diagnose` record carries one; `diagnose` prints one per flow).
    public func record(_ diagnosis: Diagnosis, for notification: SocketNotification? = nil) {
        let optIn = notification.map { optInLabels($0, metric: Name.diagnoses) } ?? labels.map { ($0.rawValue, "unknown") }
        registry.makeCounter(
            descriptor: Self.diagnosesDescriptor, labels: [("bottleneck", diagnosis.bottleneck.rawValue)] + optIn
        ).increment()
    }

    /// Records a subscriber (of `serve`) did not get: its queue was full or it was too slow.
    public func recordSubscriberDrops(subscriber: String, count: UInt64 = 1) {
        let key = [subscriber]
        let admitted = state.withLock { state -> Bool in
            let known = state.labelSets[Name.subscriberDrops, default: []]
            if known.contains(key) { return true }
            guard known.count < Self.maxLabelSetsPerMetric else { return false }
            state.labelSets[Name.subscriberDrops, default: []].insert(key)
            return true
        }
        if !admitted { overflow.increment() }
        registry.makeCounter(
            descriptor: Self.subscriberDropsDescriptor, labels: [("subscriber", admitted ? subscriber : "other")]
        ).increment(by: Int64(clamping: count))
    }

    /// The kernel's (or the poller's) totals and the sockets watched now; call before each scrape.
    /// Totals only grow during a run; a smaller value (a new program) starts counting again from it.
    public func update(_ statistics: WatchStatistics, watchedSockets watched: UInt64) {
        state.withLock { state in
            func advance(_ counter: Counter, _ keyPath: KeyPath<WatchStatistics, UInt64>) {
                let now = statistics[keyPath: keyPath], before = state.last[keyPath: keyPath]
                if now > before { counter.increment(by: Int64(clamping: now - before)) }
            }
            advance(events, \.events)
            advance(established, \.established)
            advance(enrolled, \.enrolled)
            advance(existingEnrolled, \.existingEnrolled)
            advance(ringDrops, \.ringDrops)
            advance(userDrops, \.userDrops)
            advance(sweeps, \.sweeps)
            state.last = statistics
        }
        watchedSockets.set(Double(watched))
    }

    /// The sock_ops program's cumulative run time and run count (`TCPNotifyProgram.runStatistics()`).
    public func updateKernelRunTime(nanoseconds: UInt64, count: UInt64) {
        state.withLock { state in
            if nanoseconds > state.lastRunTimeNanoseconds {
                runTime.increment(by: Double(nanoseconds - state.lastRunTimeNanoseconds) / 1e9)
            }
            if count > state.lastRunCount { runCount.increment(by: Int64(clamping: count - state.lastRunCount)) }
            state.lastRunTimeNanoseconds = nanoseconds
            state.lastRunCount = count
        }
    }

    /// The Prometheus text exposition (format 0.0.4).
    public func exposition() -> [UInt8] {
        var bytes = registry.emitToBuffer()
        if let series = connectionSeries.withLock({ $0 }) { bytes += Array(series.exposition().utf8) }
        return bytes
    }

    public func expositionText() -> String { String(decoding: exposition(), as: UTF8.self) }

    // MARK: Labels

    private static var notificationsDescriptor: MetricNameDescriptor { MetricNameDescriptor(
        metricName: "tcpnotify_notifications", unitName: "total",
        helpText: "Notifications delivered, by rule that fired and trigger (TCP event).") }
    private static var diagnosesDescriptor: MetricNameDescriptor { MetricNameDescriptor(
        metricName: "tcpnotify_diagnoses", unitName: "total", helpText: "Bottleneck verdicts reported, by verdict.") }
    private static var subscriberDropsDescriptor: MetricNameDescriptor { MetricNameDescriptor(
        metricName: "tcpnotify_subscriber_drops", unitName: "total", helpText: "Records a subscriber did not get (it was too slow).") }

    /// The allow-listed labels' values for a record, or `other` for all of them once the metric has
    /// `maxLabelSetsPerMetric` label sets.
    func optInLabels(_ notification: SocketNotification, metric: String) -> [(String, String)] {
        guard !labels.isEmpty else { return [] }
        var resolved: CgroupAttribution?? = .none
        let values = labels.map { label -> String in
            switch label {
            case .remotePort: return String(notification.remote.port)
            case .localPort: return String(notification.local.port)
            case .remoteAddress: return notification.remote.addressText
            case .cgroup, .container, .pod:
                if resolved == nil { resolved = .some(attribution?(notification.cgroupID)) }
                guard let known = resolved ?? nil else { return "unknown" }
                return label == .cgroup ? known.path : label == .container ? known.container ?? "" : known.pod ?? ""
            }
        }
        let admitted = state.withLock { state -> Bool in
            let known = state.labelSets[metric, default: []]
            if known.contains(values) { return true }
            guard known.count < Self.maxLabelSetsPerMetric else { return false }
            state.labelSets[metric, default: []].insert(values)
            return true
        }
        if !admitted { overflow.increment() }
        return zip(labels, values).map { ($0.rawValue, admitted ? $1 : "other") }
    }
}
