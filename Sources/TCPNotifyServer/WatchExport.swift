import Foundation
import Synchronization
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyExport
import TCPNotifyOTLP
import TCPNotifyRuntime

/// What `watch` exports besides its output lines: the cgroup path of each record, Prometheus metrics on
/// `--metrics-address`, OTLP log records to `--otlp-endpoint`. Set up before the session starts (so a bad
/// address fails before anything is loaded), fed by whichever session runs (BPF or polling).
package final class WatchExport: Sendable {
    package let cgroupPaths: CgroupPaths?
    package let metrics: NotificationMetrics?
    package let server: MetricsHTTPServer?
    package let otlp: OTLPRecordExporter?
    /// Reads the session's current totals into `metrics`; runs before each scrape.
    private let refresher = Refresher()

    package final class Refresher: Sendable {
        let body = Mutex<(@Sendable (NotificationMetrics) -> Void)?>(nil)
        /// Paths besides /metrics (serve's /connections).
        let routes = Mutex<MetricsHTTPServer.Routes?>(nil)
    }

    package struct Options {
        package var metricsAddress: String?
        package var metricsLabels: String?
        package var otlpEndpoint: String?

        package init(metricsAddress: String?, metricsLabels: String?, otlpEndpoint: String?) {
            self.metricsAddress = metricsAddress
            self.metricsLabels = metricsLabels
            self.otlpEndpoint = otlpEndpoint
        }
    }

    /// Checks the options (an error here is bad input: exit code 2).
    package static func validate(_ options: Options) throws(MetricsOptionError) -> (MetricsAddress?, [MetricsLabel]) {
        let address = try options.metricsAddress.map { text throws(MetricsOptionError) in try MetricsAddress.parse(text) }
        let labels = try options.metricsLabels.map { text throws(MetricsOptionError) in try MetricsLabel.parseList(text) } ?? []
        if options.metricsLabels != nil && address == nil {
            throw MetricsOptionError("--metrics-labels needs --metrics-address (metrics are served only there)")
        }
        if let endpoint = options.otlpEndpoint {
            guard OTLPRecordExporter.isAvailable else { throw MetricsOptionError("--otlp-endpoint: " + OTLPRecordExporter.unavailableMessage) }
            do {
                _ = try OTLPRecordExporter.logsURL(endpoint: endpoint)
            } catch {
                throw MetricsOptionError(error.message)
            }
        }
        return (address, labels)
    }

    /// Binds the metrics server and starts the exporter; errors here are the environment's (exit code 1).
    package init(options: Options) throws {
        let (address, labels) = try Self.validate(options)
        let paths = CgroupPaths.system()
        cgroupPaths = paths
        if let address {
            let metrics = NotificationMetrics(labels: labels, cgroupAttribution: paths?.resolver)
            self.metrics = metrics
            let refresher = self.refresher
            // Its refusals and timeouts are counted in the same registry (`tcpnotify_metrics_http_*`).
            let routes: MetricsHTTPServer.Routes = { path in refresher.routes.withLock { $0 }?(path) }
            let server = try MetricsHTTPServer(address: address, registry: metrics.registry, routes: routes) {
                refresher.body.withLock { $0 }?(metrics)
                return metrics.exposition()
            }
            self.server = server
            server.start()
            StandardError.write("tcpnotify: metrics at http://\(server.address)/metrics\n")
        } else {
            metrics = nil
            server = nil
        }
        otlp = try options.otlpEndpoint.map { try OTLPRecordExporter(endpoint: $0) }
        if let endpoint = options.otlpEndpoint {
            StandardError.write("tcpnotify: exporting notifications as OTLP log records to \(try OTLPRecordExporter.logsURL(endpoint: endpoint))\n")
        }
    }

    /// How the running session reads its totals (kernel counters, or the poller's).
    package func setRefresh(_ body: @escaping @Sendable (NotificationMetrics) -> Void) {
        refresher.body.withLock { $0 = body }
    }

    /// Answers paths besides /metrics on the metrics server (nil: 404).
    package func setRoutes(_ routes: MetricsHTTPServer.Routes?) {
        refresher.routes.withLock { $0 = routes }
    }

    /// One delivered record; `formatter` names its rules (OTLP bodies are JSON whatever `--format` says).
    package func delivered(_ notification: SocketNotification, formatter: NotificationFormatter, diagnosis: Diagnosis?) {
        metrics?.record(notification, ruleNames: formatter.ruleNames)
        if let diagnosis { metrics?.record(diagnosis, for: notification) }
        exportLogRecord(notification, formatter: formatter, diagnosis: diagnosis)
    }

    /// The OTLP part of `delivered` alone (`serve` counts its metrics itself).
    package func exportLogRecord(_ notification: SocketNotification, formatter: NotificationFormatter, diagnosis: Diagnosis?) {
        guard let otlp else { return }
        let ruleNames = formatter.ruleNames
        let line = formatter.jsonLine(for: notification, diagnosis: diagnosis)
        let attribution = cgroupPaths?.attribution(for: notification.cgroupID)
        otlp.export(notification, ruleNames: ruleNames, line: line, attribution: attribution)
        if let diagnosis { otlp.export(diagnosis, notification: notification, line: line, attribution: attribution) }
    }

    package var needsDelivery: Bool { metrics != nil || otlp != nil }

    /// Session events that metrics show: the mode (`tcpnotify_mode`) and refused features
    /// (`tcpnotify_degraded_feature`), for the packaged alerts.
    package func observe(_ event: SessionEvent) {
        guard let metrics else { return }
        switch event {
        case .attached: metrics.setMode(.push)
        case .polling: metrics.setMode(.poll)
        case .degradation(let degradation): metrics.recordDegradation(degradation)
        default: break
        }
    }

    /// `events`, and `observe` first.
    package func observing(_ events: @escaping SessionEventHandler) -> SessionEventHandler {
        { [self] event in
            observe(event)
            events(event)
        }
    }

    /// Stops serving and sends what OTLP still holds.
    package func finish() {
        server?.stop()
        otlp?.shutdown()
    }
}
