import NIOCore
import Prometheus
import Synchronization

/// Shared by the server and its connections: the open connections and the counters (atomics, so tests
/// and scrapes read them from any thread), mirrored into Prometheus counters when a registry is given.
final class MetricsServerState: Sendable {
    struct Refused: Error {}

    enum Event { case headTimeout, requestTimeout, headTooLarge, bodyTooLarge, malformed, scrape }

    let limits: MetricsHTTPServer.Limits
    /// An open connection; `headComplete` once its request head is in.
    private struct OpenConnection {
        var channel: any Channel
        var sequence: UInt64
        var headComplete = false
    }

    private struct OpenConnections {
        var byChannel: [ObjectIdentifier: OpenConnection] = [:]
        var admittedTotal: UInt64 = 0
    }

    private let open = Mutex(OpenConnections())
    private let accepted = Atomic<Int>(0), refused = Atomic<Int>(0), evicted = Atomic<Int>(0)
    private let headTimeouts = Atomic<Int>(0), requestTimeouts = Atomic<Int>(0)
    private let headTooLarge = Atomic<Int>(0), bodyTooLarge = Atomic<Int>(0), malformed = Atomic<Int>(0)
    private let scrapes = Atomic<Int>(0)
    private let exported: Exported?

    /// The Prometheus side of the counters.
    private struct Exported: Sendable {
        let refused: Counter, evicted: Counter
        let headTimeouts: Counter, requestTimeouts: Counter
        let headTooLarge: Counter, bodyTooLarge: Counter, malformed: Counter

        init(_ registry: PrometheusCollectorRegistry) {
            refused = registry.makeCounter(descriptor: MetricNameDescriptor(
                metricName: "tcpnotify_metrics_http_refused_connections_total", unitName: "",
                helpText: "Connections to the /metrics server closed as accepted: the connection limit was reached."))
            evicted = registry.makeCounter(descriptor: MetricNameDescriptor(
                metricName: "tcpnotify_metrics_http_evicted_connections_total", unitName: "",
                helpText: "Slow connections to the /metrics server closed to admit a new one at the connection limit."))
            let timeouts = MetricNameDescriptor(
                metricName: "tcpnotify_metrics_http_timeouts_total", unitName: "",
                helpText: "Connections to the /metrics server closed at a deadline: the request head, or the whole request.")
            headTimeouts = registry.makeCounter(descriptor: timeouts, labels: [("deadline", "head")])
            requestTimeouts = registry.makeCounter(descriptor: timeouts, labels: [("deadline", "request")])
            let rejected = MetricNameDescriptor(
                metricName: "tcpnotify_metrics_http_rejected_requests_total", unitName: "",
                helpText: "Requests to the /metrics server refused: head or body too large, or not HTTP/1.")
            headTooLarge = registry.makeCounter(descriptor: rejected, labels: [("reason", "head_too_large")])
            bodyTooLarge = registry.makeCounter(descriptor: rejected, labels: [("reason", "body_too_large")])
            malformed = registry.makeCounter(descriptor: rejected, labels: [("reason", "malformed")])
        }
    }

    init(limits: MetricsHTTPServer.Limits, registry: PrometheusCollectorRegistry?) {
        self.limits = limits
        exported = registry.map(Exported.init)
    }

    /// Takes `channel` on. At `maxConnections`, the oldest connection still sending its request head is
    /// closed to make room (slowloris clients cannot hold every slot); when every open connection has sent
    /// its request, `channel` is refused.
    func admit(_ channel: any Channel) -> Bool {
        let (admitted, evictedChannel) = open.withLock { open -> (Bool, (any Channel)?) in
            var victim: (any Channel)?
            if open.byChannel.count >= limits.maxConnections {
                guard let slowest = open.byChannel.values.filter({ !$0.headComplete }).min(by: { $0.sequence < $1.sequence })
                else { return (false, nil) }
                open.byChannel[ObjectIdentifier(slowest.channel)] = nil
                victim = slowest.channel
            }
            open.admittedTotal += 1
            open.byChannel[ObjectIdentifier(channel)] = OpenConnection(channel: channel, sequence: open.admittedTotal)
            return (true, victim)
        }
        guard admitted else {
            refused.add(1, ordering: .relaxed)
            exported?.refused.increment()
            return false
        }
        if let evictedChannel {
            evicted.add(1, ordering: .relaxed)
            exported?.evicted.increment()
            evictedChannel.close(promise: nil)
        }
        accepted.add(1, ordering: .relaxed)
        channel.closeFuture.whenComplete { [self] _ in
            _ = open.withLock { $0.byChannel.removeValue(forKey: ObjectIdentifier(channel)) }
        }
        return true
    }

    /// The connection's request head is complete: it is served, not evicted.
    func headCompleted(_ channel: any Channel) {
        open.withLock { $0.byChannel[ObjectIdentifier(channel)]?.headComplete = true }
    }

    func openChannels() -> [any Channel] { open.withLock { $0.byChannel.values.map(\.channel) } }

    func count(_ event: Event) {
        switch event {
        case .headTimeout: headTimeouts.add(1, ordering: .relaxed); exported?.headTimeouts.increment()
        case .requestTimeout: requestTimeouts.add(1, ordering: .relaxed); exported?.requestTimeouts.increment()
        case .headTooLarge: headTooLarge.add(1, ordering: .relaxed); exported?.headTooLarge.increment()
        case .bodyTooLarge: bodyTooLarge.add(1, ordering: .relaxed); exported?.bodyTooLarge.increment()
        case .malformed: malformed.add(1, ordering: .relaxed); exported?.malformed.increment()
        case .scrape: scrapes.add(1, ordering: .relaxed)
        }
    }

    func snapshot() -> MetricsHTTPServer.Counters {
        var counters = MetricsHTTPServer.Counters()
        counters.accepted = accepted.load(ordering: .relaxed)
        counters.refused = refused.load(ordering: .relaxed)
        counters.evicted = evicted.load(ordering: .relaxed)
        counters.headTimeouts = headTimeouts.load(ordering: .relaxed)
        counters.requestTimeouts = requestTimeouts.load(ordering: .relaxed)
        counters.headTooLarge = headTooLarge.load(ordering: .relaxed)
        counters.bodyTooLarge = bodyTooLarge.load(ordering: .relaxed)
        counters.malformed = malformed.load(ordering: .relaxed)
        counters.scrapes = scrapes.load(ordering: .relaxed)
        counters.open = open.withLock { $0.byChannel.count }
        return counters
    }
}
