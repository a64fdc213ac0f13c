import Foundation
import TCPNotifyCore

#if OTLP
import Logging
import OTel
import ServiceLifecycle
#endif

/// `--otlp-endpoint`: notifications and diagnoses as OpenTelemetry log records over OTLP/HTTP (protobuf by
/// default; `OTEL_EXPORTER_OTLP_PROTOCOL=http/json` and the other standard `OTEL_*` variables apply), for
/// collectors that gather many hosts. Each record's body is the `watch` JSON line; its attributes are the
/// socket (`network.local.*`, `network.peer.*`), the rules, the trigger, the cgroup path and, when
/// recognised, `container.id` and `k8s.pod.uid`, and the whole `tcp_info`.
///
/// swift-otel takes minutes to build, so it is in only with the package trait `OTLP`
/// (`swift build --traits OTLP`); without it `isAvailable` is false and `init` throws `unavailableMessage`.
public final class OTLPRecordExporter: Sendable {
    public static let isAvailable: Bool = {
        #if OTLP
        true
        #else
        false
        #endif
    }()

    public static let unavailableMessage =
        "this build of tcpnotify has no OpenTelemetry exporter; build it with the OTLP trait: "
        + "swift build -c release --traits OTLP"

    /// The URL log records are posted to: the endpoint as a base (`http://collector:4318` gets `/v1/logs`,
    /// as for OTEL_EXPORTER_OTLP_ENDPOINT), or as it is when it already ends in `/v1/logs`.
    public static func logsURL(endpoint: String) throws(OTLPOptionError) -> String {
        guard let url = URL(string: endpoint), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = url.host, !host.isEmpty else {
            throw OTLPOptionError("invalid --otlp-endpoint '\(endpoint)': give an http:// or https:// URL, e.g. http://127.0.0.1:4318")
        }
        if url.path.hasSuffix("/v1/logs") { return endpoint }
        return (endpoint.hasSuffix("/") ? endpoint : endpoint + "/") + "v1/logs"
    }

    #if OTLP
    private let logger: Logger
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    /// Starts the exporter (a batch processor sending at most every `flushInterval`).
    public init(endpoint: String, serviceName: String = "tcpnotify", flushInterval: Duration = .seconds(1)) throws {
        var configuration = OTel.Configuration.default
        configuration.serviceName = serviceName
        configuration.traces.enabled = false
        configuration.metrics.enabled = false
        configuration.logs.enabled = true
        configuration.logs.level = .info
        configuration.logs.exporter = .otlp
        configuration.logs.otlpExporter.endpoint = try Self.logsURL(endpoint: endpoint)
        configuration.logs.batchLogRecordProcessor.scheduleDelay = flushInterval
        configuration.diagnosticLogLevel = .warning
        let (factory, service) = try OTel.makeLoggingBackend(configuration: configuration)
        logger = Logger(label: "tcpnotify", factory: factory)
        let quiet = Logger(label: "tcpnotify-otlp", factory: { _ in SwiftLogNoOpLogHandler() })
        group = ServiceGroup(configuration: .init(services: [service], logger: quiet))
        task = Task { [group] in try await group.run() }
    }

    /// Sends what is queued and stops; waits at most `timeout`.
    public func shutdown(timeout: Duration = .seconds(5)) {
        let done = DispatchSemaphore(value: 0)
        Task { [group, task] in
            await group.triggerGracefulShutdown()
            _ = try? await task.value
            done.signal()
        }
        let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) / 1e18
        _ = done.wait(timeout: .now() + seconds)
    }

    /// One notification; `line` is its `watch` JSON line.
    public func export(_ notification: SocketNotification, ruleNames: [String], line: String, attribution: CgroupAttribution?) {
        var metadata = Self.socketMetadata(notification, attribution: attribution)
        metadata["tcpnotify.record.type"] = "notification"
        metadata["tcpnotify.trigger"] = .string(notification.trigger.description)
        let fired = notification.firedRuleIndices.map { $0 < ruleNames.count ? ruleNames[$0] : "rule\($0)" }
        metadata["tcpnotify.rules"] = .array(fired.map { .string($0) })
        metadata["tcpnotify.socket_notifications"] = .stringConvertible(notification.socketNotificationCount)
        var info: Logger.Metadata = [:]
        for field in TCPInfoField.allCases { info[field.name] = .stringConvertible(notification.info[field]) }
        metadata["tcp_info"] = .dictionary(info)
        logger.log(level: notification.trigger == .close && fired.isEmpty ? .info : .warning, "\(line)", metadata: metadata)
    }

    /// One verdict (a `watch --diagnose` record's, or a `diagnose` line's); `line` is its JSON.
    public func export(_ diagnosis: Diagnosis, notification: SocketNotification?, line: String, attribution: CgroupAttribution?) {
        var metadata = notification.map { Self.socketMetadata($0, attribution: attribution) } ?? [:]
        metadata["tcpnotify.record.type"] = "diagnosis"
        metadata["tcpnotify.bottleneck"] = .string(diagnosis.bottleneck.rawValue)
        metadata["tcpnotify.confidence"] = .stringConvertible(diagnosis.confidence)
        metadata["tcpnotify.summary"] = .string(diagnosis.summary)
        logger.info("\(line)", metadata: metadata)
    }

    static func socketMetadata(_ notification: SocketNotification, attribution: CgroupAttribution?) -> Logger.Metadata {
        var metadata: Logger.Metadata = [
            "network.transport": "tcp",
            "network.type": .string(notification.family == 10 ? "ipv6" : "ipv4"),
            "network.local.address": .string(notification.local.addressText),
            "network.local.port": .stringConvertible(notification.local.port),
            "network.peer.address": .string(notification.remote.addressText),
            "network.peer.port": .stringConvertible(notification.remote.port),
            "tcpnotify.cookie": .stringConvertible(notification.cookie),
            "tcpnotify.cgroup_id": .stringConvertible(notification.cgroupID),
        ]
        if let attribution {
            metadata["tcpnotify.cgroup"] = .string(attribution.path)
            if let container = attribution.container { metadata["container.id"] = .string(container) }
            if let pod = attribution.pod { metadata["k8s.pod.uid"] = .string(pod) }
        }
        return metadata
    }
    #else
    public init(endpoint: String, serviceName: String = "tcpnotify", flushInterval: Duration = .seconds(1)) throws {
        throw OTLPOptionError(Self.unavailableMessage)
    }

    public func shutdown(timeout: Duration = .seconds(5)) {}
    public func export(_ notification: SocketNotification, ruleNames: [String], line: String, attribution: CgroupAttribution?) {}
    public func export(_ diagnosis: Diagnosis, notification: SocketNotification?, line: String, attribution: CgroupAttribution?) {}
    #endif
}

/// An `--otlp-*` option that cannot be used: the message says why (exit code 2).
public struct OTLPOptionError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
