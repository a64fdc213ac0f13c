import ArgumentParser
import Foundation
import Glibc
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyExport
import UnixSignals

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the daemon: one kernel attachment shared by subscribers on a Unix socket.",
        discussion: """
            Applications connect to the Unix socket (--socket, default \(SubscriberProtocol.defaultSocketPath); \
            mode 0660, root and --socket-group only) and subscribe with their own filter and rules \
            (`tcpnotify subscribe`, or the TCPNotifyClient library); each receives only its own \
            notifications, as JSON lines. All subscribers share one sock_ops program and one set of \
            kernel tables.

            --config FILE (the YAML of `watch --config`) adds the daemon's own subscription, printed \
            to stdout; SIGHUP reloads it without losing enrolled sockets. SIGTERM or SIGINT detaches, \
            flushes every subscriber and prints the final statistics.
            """
    )

    @OptionGroup var configFile: ConfigOption
    @OptionGroup var listener: SocketOption

    @Option(name: .long, help: "Group allowed to subscribe besides root (default: 'tcpnotify' if it exists, else root only).")
    var socketGroup: String?

    @OptionGroup var scope: CgroupOption
    @OptionGroup var exportOptions: ExportOptions

    @Option(name: .long, parsing: .unconditional, help: "Per-subscriber queue in bytes; a subscriber that reads slower loses notifications beyond it (counted and reported to it).")
    var queueBytes: Int = 4 << 20

    @OptionGroup var tuning: BPFTuningOptions

    @Option(name: .long, help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    @OptionGroup var libbpf: VerboseOption

    /// Metrics are served unless --metrics-address off.
    static let defaultMetricsAddress = "127.0.0.1:\(MetricsAddress.defaultPort)"

    var config: String? { configFile.config }
    var socket: String { listener.socket }
    var cgroup: String? { scope.cgroup }
    var ringBytes: Int { tuning.ringBytes }
    var verbose: Bool { libbpf.verbose }
    var exportSettings: WatchExport.Options { exportOptions.options(defaultMetricsAddress: Self.defaultMetricsAddress) }

    func validate() throws {
        try ByteSizeOption.checkRange(queueBytes, option: "--queue-bytes")
        if Logger.Level(rawValue: logLevel) == nil {
            throw ValidationError("--log-level must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        try listener.checkListenable()
        try exportOptions.check(defaultMetricsAddress: Self.defaultMetricsAddress)
    }

    func run() throws {
        signal(SIGPIPE, SIG_IGN)
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "tcpnotify.serve")

        var inputs: WatchInputs?
        if let config {
            do {
                inputs = try WatchInputs.load(config: config, filter: "", rules: [], tuplesPath: nil, diagnose: false)
            } catch {
                StandardError.write("tcpnotify: \(error.message)\n")
                throw ExitCode(2)
            }
        }
        let group: gid_t?
        do {
            group = try Self.resolveGroup(socketGroup)
        } catch let error as WatchInputs.Failure {
            StandardError.write("tcpnotify: \(error.message)\n")
            throw ExitCode(2)
        } catch {
            StandardError.write("tcpnotify: \(error)\n")
            throw ExitCode(2)
        }
        let export: WatchExport
        do {
            export = try WatchExport(options: exportSettings)
        } catch {
            StandardError.write("tcpnotify: \(error)\n")
            throw ExitCode(1)
        }
        let sweepMilliseconds = tuning.sweepIntervalMilliseconds

        let settings = ServeDaemon.Settings(
            inputs: inputs, configPath: config, socketPath: socket, socketGroup: group, cgroupPath: cgroup,
            queueBytes: queueBytes, ringBytes: ringBytes, sweepMilliseconds: sweepMilliseconds, verbose: verbose,
            export: export)
        let finished = DispatchSemaphore(value: 0)
        let status = StatusBox()
        Task {
            status.code = await ServeDaemon.run(settings, logger: logger)
            finished.signal()
        }
        finished.wait()
        if status.code != 0 { throw ExitCode(status.code) }
    }

    final class StatusBox: @unchecked Sendable {
        var code: Int32 = 0
    }

    struct GroupError: Error, CustomStringConvertible {
        let description: String
    }

    /// The group that may use the socket: the one named, or `tcpnotify` when it exists.
    static func resolveGroup(_ name: String?) throws -> gid_t? {
        let wanted = name ?? "tcpnotify"
        if let gid = UInt32(wanted) { return gid }
        guard let entry = getgrnam(wanted) else {
            if name == nil { return nil }
            throw GroupError(description: "--socket-group: no group named '\(wanted)'")
        }
        return entry.pointee.gr_gid
    }
}

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
        var ringBytes: Int
        var sweepMilliseconds: UInt64
        var verbose: Bool
        /// Prometheus metrics (and cgroup paths in the lines); shared with `watch`.
        var export: WatchExport
    }

    /// Runs until shut down; the exit status (1: the kernel or privileges are not enough, or the socket).
    static func run(_ settings: Settings, logger: Logger) async -> Int32 {
        let output = LineOutput()
        var configuration = WatchConfiguration(
            filter: settings.inputs?.filter ?? CompiledFilter(matchAll: true, predicates: [], clauses: [], source: ""),
            rules: settings.inputs?.rules ?? CompiledRules(rules: [], terms: [], clauses: []),
            tuples: settings.inputs?.tuples ?? [], ringBufferBytes: settings.ringBytes)
        configuration.subscribesSlotZero = settings.inputs != nil

        let program: TCPNotifyProgram, attachPath: String
        do {
            attachPath = try settings.cgroupPath ?? WatchSession.defaultCgroup()
            program = try TCPNotifyProgram(configuration: configuration, logLibbpf: settings.verbose)
        } catch {
            logger.critical("cannot load the BPF program", metadata: ["error": "\(error)"])
            StandardError.write("tcpnotify: \(error)\n")
            return 1
        }
        let kernel = KernelOwner(program)
        let hub = SubscriptionHub(
            kernel: kernel, logger: logger, queueBytes: settings.queueBytes, output: output, export: settings.export,
            initial: (program.ruleGeneration, program.tables))
        let export = settings.export
        export.setRefresh { metrics in
            guard var statistics = try? kernel.runSync({ try $0.kernelStatistics() }) else { return }
            statistics.userDrops = hub.unknownGenerationRecords
            metrics.update(statistics, watchedSockets: statistics.watchedSockets)
        }
        let reader: RingBufferReader, attachment: CgroupAttachment
        do {
            reader = try program.makeReader { hub.dispatch($0) }
            reader.start()
            attachment = try program.attach(cgroupPath: attachPath)
        } catch {
            logger.critical("cannot attach", metadata: ["cgroup": "\(attachPath)", "error": "\(error)"])
            StandardError.write("tcpnotify: \(error)\n")
            return 1
        }
        logger.info("attached", metadata: [
            "cgroup": "\(attachPath)", "link": "\(attachment.linkID)", "config": "\(settings.configPath ?? "none")",
        ])
        if program.subscriptions[0] != nil {
            do {
                let result = try program.enrollExisting(in: NetworkNamespaces.all(), subscribers: 1)
                logger.info("enrolled existing sockets for the config subscription", metadata: [
                    "enrolled": "\(result.enrolled)", "namespaces": "\(result.namespaces)",
                ])
            } catch {
                logger.warning("existing sockets are not enrolled, only new connections", metadata: ["error": "\(error.summary)"])
            }
        }
        if program.rules.needsSweep { _ = try? program.prepareSweep() }
        // Subscribers leave: load the program that clears their bits now, so a refusal is reported at start.
        _ = program.isAvailable(.forgetMap) || program.isAvailable(.forgetTCP)
        for degradation in program.degradations {
            logger.warning("feature off", metadata: [
                "feature": "\(degradation.feature)", "program": "\(degradation.program)", "reason": "\(degradation.reason)",
                "instead": "\(degradation.replacement ?? "nothing")", "lost": "\(degradation.lost)",
            ])
        }

        let eventLoops = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server: Channel
        do {
            server = try await SubscriberSocket.bind(
                path: settings.socketPath, group: settings.socketGroup, hub: hub, eventLoops: eventLoops, logger: logger)
        } catch {
            logger.critical("cannot open the subscriber socket", metadata: ["error": "\(error)"])
            StandardError.write("tcpnotify: \(error)\n")
            attachment.detach()
            reader.stop()
            try? await eventLoops.shutdownGracefully()
            settings.export.finish()
            return 1
        }
        logger.info("listening for subscribers", metadata: [
            "socket": "\(settings.socketPath)", "group": "\(settings.socketGroup.map { String($0) } ?? "root only")",
        ])
        StandardError.write("tcpnotify: serving on \(settings.socketPath); SIGTERM or SIGINT stops, SIGHUP reloads\n")

        let kernelService = KernelService(
            kernel: kernel, attachment: AttachmentBox(attachment), reader: reader, hub: hub, output: output, logger: logger)
        let group = ServiceGroup(configuration: .init(
            services: [
                .init(service: SubscriberServerService(server: server, hub: hub, socketPath: settings.socketPath)),
                .init(service: ReloadService(configPath: settings.configPath, kernel: kernel, hub: hub, logger: logger)),
                .init(service: kernelService),
                .init(service: SweepService(kernel: kernel, intervalMilliseconds: settings.sweepMilliseconds, logger: logger)),
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
        export.finish()
        return status
    }
}

/// CgroupAttachment is confined to the kernel service; it only crosses into it once.
final class AttachmentBox: @unchecked Sendable {
    let attachment: CgroupAttachment
    init(_ attachment: CgroupAttachment) { self.attachment = attachment }
}

/// Owns the attachment: at shutdown it detaches first (no new records), lets the reader drain the ring
/// into the subscribers' queues, and prints the final statistics.
struct KernelService: Service {
    let kernel: KernelOwner
    let attachment: AttachmentBox
    let reader: RingBufferReader
    let hub: SubscriptionHub
    let output: LineOutput
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        attachment.attachment.detach()
        reader.stop()
        var statistics = (try? kernel.runSync { try $0.kernelStatistics() }) ?? WatchStatistics()
        statistics.received = reader.receivedCount
        statistics.userDrops = reader.malformedCount + hub.unknownGenerationRecords
        let formatter = NotificationFormatter(format: .json, ruleNames: [], realtimeOffsetNanoseconds: 0)
        output.write([formatter.line(for: statistics)])
        logger.info("detached", metadata: [
            "events": "\(statistics.events)", "enrolled": "\(statistics.enrolled)",
            "notifications": "\(statistics.notifications)", "ring_drops": "\(statistics.ringDrops)",
            "received": "\(statistics.received)", "subscribers": "\(hub.subscriberCount)",
        ])
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

/// The periodic in-kernel sweep, for stall rules (only while some subscriber's rules need it).
struct SweepService: Service {
    let kernel: KernelOwner
    let intervalMilliseconds: UInt64
    let logger: Logger

    func run() async throws {
        guard intervalMilliseconds > 0 else {
            try? await gracefulShutdown()
            return
        }
        try? await cancelWhenGracefulShutdown {
            var reported = false
            while true {
                try await Task.sleep(for: .milliseconds(Int(intervalMilliseconds)))
                do {
                    _ = try await kernel.run { program in try program.sweepIfNeeded() }
                } catch {
                    if !reported { logger.warning("the periodic sweep failed; stalls are seen only at TCP events", metadata: ["error": "\(error)"]) }
                    reported = true
                }
            }
        }
    }
}
