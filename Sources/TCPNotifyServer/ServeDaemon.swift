import Glibc
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyExport
import TCPNotifyRuntime

/// `tcpnotify serve`: start the source once (`SourceStarter`: push, or polling), then run the subscriber
/// socket, the sweep, SIGHUP reloads and the watchdogs as services of one ServiceGroup until SIGTERM or
/// SIGINT. The command only parses its options into `Settings`.
package enum ServeDaemon {
    package struct Settings: Sendable {
        /// The source: `--mode`, `--interval`, the cgroup, the ring, the sweep, libbpf's messages. Its inputs
        /// are the config file's subscription (subscriber 0) when `subscribesSlotZero`; `reload` reads the
        /// file again on SIGHUP (nil: SIGHUP is ignored, with a warning).
        package var session: SessionSettings
        package var socketPath: String
        package var socketGroup: gid_t?
        package var queueBytes: Int
        package var subscriberLimits: SubscriberLimits
        /// Prometheus metrics (and cgroup paths in the lines); shared with `watch`.
        package var export: WatchExport
        /// `--history`: what it selects and its bounds; nil: no history.
        package var history: (filter: CompiledFilter, limits: ConnectionHistoryRecorder.History.Limits)?
        /// `--metrics-connections`: per-connection series at most (of the history's connections).
        package var metricsConnections: Int

        package init(session: SessionSettings, socketPath: String, socketGroup: gid_t?, queueBytes: Int,
                     subscriberLimits: SubscriberLimits, export: WatchExport,
                     history: (filter: CompiledFilter, limits: ConnectionHistoryRecorder.History.Limits)?,
                     metricsConnections: Int = ConnectionSeries.defaultMaximumConnections) {
            self.session = session
            self.session.servesSubscribers = true
            self.session.measuresRunTime = false
            self.socketPath = socketPath
            self.socketGroup = socketGroup
            self.queueBytes = queueBytes
            self.subscriberLimits = subscriberLimits
            self.export = export
            self.history = history
            self.metricsConnections = metricsConnections
        }
    }

    /// Runs until shut down; the exit status (`ExitStatus.of` the start's error; 1: the history or the socket).
    package static func run(_ settings: Settings, logger: Logger) async -> Int32 {
        let output = LineOutput()
        let export = settings.export
        let events = export.observing(Self.events(logger, config: settings.session.reload?.path))
        let history = settings.history.map {
            ConnectionHistoryRecorder(filter: $0.filter, limits: $0.limits, registry: export.metrics?.registry,
                                      verdictCounter: export.metrics)
        }
        let source: any SubscriberTablesSource, hub: SubscriptionHub, attachPath: String, cgroupInode: UInt64?
        do {
            attachPath = try settings.session.cgroupPath ?? Clocks.defaultCgroup()
            cgroupInode = CgroupPresence.inode(of: attachPath)
            var made: SubscriptionHub?
            source = try SourceStarter(settings: settings.session, events: events).start { source in
                let kernel = KernelOwner(source)
                let hub = SubscriptionHub(
                    kernel: kernel, logger: logger, queueBytes: settings.queueBytes, output: output, export: export,
                    history: history, initial: source.withTables { ($0.ruleGeneration, $0.tables) })
                hub.attachedCgroup.withLock { $0 = attachPath }
                made = hub
                return { hub.dispatch($0) }
            }
            hub = made! // set by `start`, which calls it before it returns
        } catch {
            logger.critical("cannot start", metadata: ["mode": "\(settings.session.mode)", "error": "\(error)"])
            StandardError.write("tcpnotify: \(error)\n")
            export.finish()
            return ExitStatus.of(error).rawValue
        }
        let kernel = hub.kernel
        export.setRefresh { metrics in
            var statistics = source.statistics().statistics
            statistics.userDrops = hub.unknownGenerationRecords
            metrics.update(statistics, watchedSockets: statistics.watchedSockets)
            history?.refreshMetrics()
        }
        if let history {
            export.setRoutes { path in history.httpReply(path: path) }
            export.metrics?.setConnectionSeries(history.connectionSeries(maximumConnections: settings.metricsConnections))
            guard install(history, kernel: kernel, hub: hub, logger: logger) else {
                _ = source.stop()
                export.finish()
                return 1
            }
        }
        if let push = source as? PushSource {
            // Subscribers leave: load the program that clears their bits now, so a refusal is reported at start.
            push.withProgram { _ = $0.isAvailable(.forgetMap) || $0.isAvailable(.forgetTCP) }
            push.prepareSweep(policy: settings.session.sweepPolicy, events: events)
        }

        let eventLoops = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let bind = { @Sendable in
            try await SubscriberSocket.bind(
                path: settings.socketPath, group: settings.socketGroup, hub: hub, limits: settings.subscriberLimits,
                eventLoops: eventLoops, logger: logger)
        }
        let server: Channel
        do {
            server = try await bind()
        } catch {
            logger.critical("cannot open the subscriber socket", metadata: ["error": "\(error)"])
            StandardError.write("tcpnotify: \(error)\n")
            _ = source.stop()
            try? await eventLoops.shutdownGracefully()
            export.finish()
            return 1
        }
        logger.info("listening for subscribers", metadata: [
            "socket": "\(settings.socketPath)", "group": "\(settings.socketGroup.map { String($0) } ?? "root only")",
        ])
        StandardError.write("tcpnotify: serving on \(settings.socketPath); SIGTERM or SIGINT stops, SIGHUP reloads\n")

        let group = ServiceGroup(configuration: .init(
            services: [
                .init(service: SubscriberServerService(server: server, hub: hub, socketPath: settings.socketPath)),
                .init(service: ReloadService(reload: settings.session.reload, kernel: kernel, hub: hub, logger: logger)),
                .init(service: KernelService(kernel: kernel, hub: hub, output: output, logger: logger)),
                .init(service: SweepService(kernel: kernel, events: events)),
                .init(service: CgroupWatchService(path: attachPath, inode: cgroupInode, logger: logger),
                      successTerminationBehavior: .gracefullyShutdownGroup),
                .init(service: SocketKeeperService(socketPath: settings.socketPath, rebind: bind, logger: logger)),
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

    /// `--history`: its own subscription, with the existing sockets it selects enrolled. False: it cannot be
    /// installed (said on stderr).
    private static func install(_ history: ConnectionHistoryRecorder, kernel: KernelOwner, hub: SubscriptionHub,
                                logger: Logger) -> Bool {
        do {
            let installed = try kernel.runSync { try history.install(in: $0, hub: hub) }
            let limits = history.limits
            logger.info("keeping connection history", metadata: [
                "filter": "\(history.filter.source)", "subscriber": "\(installed.slot)", "existing_enrolled": "\(installed.existing)",
                "max_connections": "\(limits.maximumConnections)", "max_verdicts": "\(limits.maximumVerdicts)",
                "retention": "\(TimeSpan(nanoseconds: limits.retentionNanoseconds))",
            ])
            return true
        } catch {
            logger.critical("cannot install the history subscription", metadata: ["error": "\(error)"])
            StandardError.write("tcpnotify: --history: \(error)\n")
            return false
        }
    }
}
