import Foundation
import Glibc
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyExport
import TCPNotifyRuntime
import TCPNotifyServer
import UnixSignals

/// `tcpnotify serve`: load and attach once, then run the subscriber socket, the sweep and SIGHUP
/// reloads as services of one ServiceGroup until SIGTERM or SIGINT.
enum ServeDaemon {
    struct Settings: Sendable {
        var inputs: WatchInputs?
        var configPath: String?
        var socketPath: String
        var socketGroup: gid_t?
        var cgroupPath: String?
        var queueBytes: Int
        var subscriberLimits: SubscriberLimits
        var ringBytes: Int
        var sweepPolicy: SweepPolicy
        var verbose: Bool
        /// `--mode`: push (BPF), poll (sock_diag), or auto (push, else poll); `--interval` for polling.
        var mode: SessionMode = .auto
        var pollIntervalNanoseconds: UInt64 = 1_000_000_000
        var pollIntervalText = "1s"
        /// Prometheus metrics (and cgroup paths in the lines); shared with `watch`.
        var export: WatchExport
        /// `--history`: what it selects and its bounds; nil: no history.
        var history: (filter: CompiledFilter, limits: ConnectionHistoryRecorder.History.Limits)?
        /// `--metrics-connections`: per-connection series at most (of the history's connections).
        var metricsConnections = ConnectionSeries.defaultMaximumConnections
    }

    /// Runs until shut down; the exit status (1: the kernel or privileges are not enough, or the socket).
    static func run(_ settings: Settings, logger: Logger) async -> Int32 {
        let output = LineOutput()
        let events = settings.export.observing(ServeDaemon.events(logger))
        let history = settings.history.map {
            ConnectionHistoryRecorder(filter: $0.filter, limits: $0.limits, registry: settings.export.metrics?.registry,
                                      verdictCounter: settings.export.metrics)
        }
        let started: Started, attachPath: String, cgroupInode: UInt64?
        do {
            attachPath = try settings.cgroupPath ?? Clocks.defaultCgroup()
            cgroupInode = CgroupPresence.inode(of: attachPath)
            started = try start(settings, attachPath: attachPath, events: events, logger: logger) { kernel, initial in
                let hub = SubscriptionHub(
                    kernel: kernel, logger: logger, queueBytes: settings.queueBytes, output: output, export: settings.export,
                    history: history, initial: initial)
                hub.attachedCgroup.withLock { $0 = attachPath }
                return hub
            }
        } catch {
            logger.critical("cannot start", metadata: ["mode": "\(settings.mode)", "error": "\(error)"])
            StandardError.write("tcpnotify: \(error)\n")
            settings.export.finish()
            return ExitStatus.of(error).rawValue
        }
        let (source, kernel, hub) = (started.source, started.kernel, started.hub)
        settings.export.metrics?.setMode(source.kind == .push ? NotificationMetrics.Mode.push : .poll)
        let export = settings.export
        export.setRefresh { metrics in
            var statistics = source.statistics().statistics
            statistics.userDrops = hub.unknownGenerationRecords
            metrics.update(statistics, watchedSockets: statistics.watchedSockets)
            history?.refreshMetrics()
        }
        if let history {
            export.setRoutes { path in history.httpReply(path: path) }
            export.metrics?.setConnectionSeries(history.connectionSeries(maximumConnections: settings.metricsConnections))
        }
        if let history {
            do {
                let installed = try kernel.runSync { try history.install(in: $0, hub: hub) }
                let limits = history.limits
                logger.info("keeping connection history", metadata: [
                    "filter": "\(history.filter.source)", "subscriber": "\(installed.slot)", "existing_enrolled": "\(installed.existing)",
                    "max_connections": "\(limits.maximumConnections)", "max_verdicts": "\(limits.maximumVerdicts)",
                    "retention": "\(TimeSpan(nanoseconds: limits.retentionNanoseconds))",
                ])
            } catch {
                logger.critical("cannot install the history subscription", metadata: ["error": "\(error)"])
                StandardError.write("tcpnotify: --history: \(error)\n")
                _ = source.stop()
                settings.export.finish()
                return 1
            }
        }
        if let push = source as? PushSource {
            // Subscribers leave: load the program that clears their bits now, so a refusal is reported at start.
            push.withProgram { _ = $0.isAvailable(.forgetMap) || $0.isAvailable(.forgetTCP) }
            push.prepareSweep(policy: settings.sweepPolicy, events: events)
        }

        let eventLoops = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server: Channel
        do {
            server = try await SubscriberSocket.bind(
                path: settings.socketPath, group: settings.socketGroup, hub: hub, limits: settings.subscriberLimits,
                eventLoops: eventLoops, logger: logger)
        } catch {
            logger.critical("cannot open the subscriber socket", metadata: ["error": "\(error)"])
            StandardError.write("tcpnotify: \(error)\n")
            _ = source.stop()
            try? await eventLoops.shutdownGracefully()
            settings.export.finish()
            return 1
        }
        logger.info("listening for subscribers", metadata: [
            "socket": "\(settings.socketPath)", "group": "\(settings.socketGroup.map { String($0) } ?? "root only")",
        ])
        StandardError.write("tcpnotify: serving on \(settings.socketPath); SIGTERM or SIGINT stops, SIGHUP reloads\n")

        let kernelService = KernelService(kernel: kernel, hub: hub, output: output, logger: logger)
        let group = ServiceGroup(configuration: .init(
            services: [
                .init(service: SubscriberServerService(server: server, hub: hub, socketPath: settings.socketPath)),
                .init(service: ReloadService(configPath: settings.configPath, kernel: kernel, hub: hub, logger: logger)),
                .init(service: kernelService),
                .init(service: SweepService(kernel: kernel, events: events)),
                .init(service: CgroupWatchService(path: attachPath, inode: cgroupInode, logger: logger), successTerminationBehavior: .gracefullyShutdownGroup),
                .init(service: SocketKeeperService(socketPath: settings.socketPath, rebind: { [settings] in
                    try await SubscriberSocket.bind(
                        path: settings.socketPath, group: settings.socketGroup, hub: hub, limits: settings.subscriberLimits,
                        eventLoops: eventLoops, logger: logger)
                }, logger: logger)),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        var status: Int32 = 0
        do {
            try await group.run()
        } catch {
            logger.error("service failure", metadata: ["error": "\(error)"])
            status = 1
        }
        try? await eventLoops.shutdownGracefully()
        export.setRefresh { _ in }
        export.setRoutes(nil)
        export.finish()
        return status
    }
}

/// Owns the attachment: at shutdown it detaches first (no new records), lets the reader drain the ring
/// into the subscribers' queues, and prints the final statistics.
struct KernelService: Service {
    let kernel: KernelOwner
    let hub: SubscriptionHub
    let output: LineOutput
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        let final = kernel.source.stop()
        var statistics = final.statistics
        statistics.userDrops += hub.unknownGenerationRecords
        let formatter = NotificationFormatter(format: .json, ruleNames: [], realtimeOffsetNanoseconds: 0)
        output.write([formatter.line(for: statistics, polling: final.polling)]) // polling: "mode":"poll"
        logger.info(kernel.source.kind == .push ? "detached" : "stopped polling", metadata: [
            "mode": "\(kernel.source.kind.rawValue)",
            "events": "\(statistics.events)", "enrolled": "\(statistics.enrolled)",
            "notifications": "\(statistics.notifications)", "ring_drops": "\(statistics.ringDrops)",
            "received": "\(statistics.received)", "subscribers": "\(hub.subscriberCount)",
        ])
        if let release = (kernel.source as? PushSource)?.callbackFlagRelease { logger.info("\(release.summary)") }
    }
}

/// The subscriber socket. At shutdown (after the kernel service drained the ring) every subscriber gets
/// what is queued for it and an `end` line; then the socket file is removed.
struct SubscriberServerService: Service {
    let server: Channel
    let hub: SubscriptionHub
    let socketPath: String

    func run() async throws {
        try? await gracefulShutdown()
        try? await server.close()
        await hub.finishAll(reason: "shutdown", timeoutSeconds: 2)
        unlink(socketPath)
    }
}

/// SIGHUP: reloads the config file's subscription (subscriber 0). New rules re-arm every enrolled socket;
/// the new selection applies to connections established from then on. A bad file changes nothing.
struct ReloadService: Service {
    let configPath: String?
    let kernel: KernelOwner
    let hub: SubscriptionHub
    let logger: Logger

    func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            await reload()
        }
    }

    func reload() async {
        guard let configPath else {
            logger.warning("SIGHUP ignored: no --config file to reload")
            return
        }
        let inputs: WatchInputs
        do {
            inputs = try WatchInputs.load(config: configPath, filter: "", rules: [], tuplesPath: nil, diagnose: false)
        } catch {
            logger.error("reload failed, keeping the running configuration", metadata: ["config": "\(configPath)", "error": "\(error.message)"])
            StandardError.write("tcpnotify: reload failed, keeping the running configuration: \(error.message)\n")
            return
        }
        let hub = self.hub
        do {
            try await kernel.run { program in
                var next = program.subscriptions
                next[0] = Subscription(filter: inputs.filter, rules: inputs.rules, usesTuples: !inputs.tuples.isEmpty)
                _ = try next.tables() // a shared limit: refuse before anything changes
                try program.replaceSelection(filter: inputs.filter, tuples: inputs.tuples)
                hub.recordNextGeneration(program.ruleGeneration &+ 1, try next.tables())
                try program.replaceRules(inputs.rules)
            }
            logger.info("reloaded", metadata: ["config": "\(configPath)", "rules": "\(inputs.rules.rules.count)"])
            StandardError.write("tcpnotify: reloaded \(configPath): \(inputs.rules.rules.count) rule(s)\n")
        } catch {
            logger.error("reload failed, keeping the running configuration", metadata: ["config": "\(configPath)", "error": "\(error)"])
            StandardError.write("tcpnotify: reload failed, keeping the running configuration: \(error)\n")
        }
    }
}

/// The periodic in-kernel sweep, for stall rules (only while some subscriber's rules need it): its
/// period follows the rules in force, which change as subscribers come and go.
struct SweepService: Service {
    let kernel: KernelOwner
    let events: SessionEventHandler
    /// While no rule needs a sweep, how often to look again.
    static let idleCheckMilliseconds: UInt64 = 1000

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while true {
                let interval = kernel.source.tickMilliseconds
                try await Task.sleep(for: .milliseconds(Int(interval ?? Self.idleCheckMilliseconds)))
                if interval != nil { await kernel.tick(events: events) }
            }
        }
    }
}

extension ServeDaemon {
    /// The session events `serve` logs (its stderr is structured).
    static func events(_ logger: Logger) -> SessionEventHandler {
        { event in
            switch event {
            case .enrolled(let result):
                logger.info("enrolled existing sockets for the config subscription", metadata: [
                    "enrolled": "\(result.enrolled)", "namespaces": "\(result.namespaces)",
                ])
            case .enrollmentFailed(let reason):
                logger.warning("existing sockets are not enrolled, only new connections", metadata: ["error": "\(reason)"])
            case .degradation(let degradation):
                logger.warning("feature off", metadata: [
                    "feature": "\(degradation.feature)", "program": "\(degradation.program)", "reason": "\(degradation.reason)",
                    "instead": "\(degradation.replacement ?? "nothing")", "lost": "\(degradation.lost)",
                ])
            case .sweepFailed(let reason):
                logger.warning("the periodic sweep failed; stalls are seen only at TCP events", metadata: ["error": "\(reason)"])
            case .noSweep:
                break // the refused programs are reported as degradations
            default:
                logger.info("\(event.message)")
            }
        }
    }
}
