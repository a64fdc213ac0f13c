import ArgumentParser
import Foundation
import Glibc
import Logging
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyExport
import TCPNotifyRuntime
import TCPNotifyServer

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

    @Option(name: .long, help: "Subscriber connections at once (subscribed or not); more are refused with an error line.")
    var maxClients: Int = SubscriberLimits().maximumConnections

    @Option(name: .long, help: "Close a subscriber connection that has not subscribed and sent nothing for this long (default 30s).",
            transform: DurationOption.clientIdleTimeout)
    var clientIdleTimeout: TimeSpan = .seconds(30)

    @OptionGroup var tuning: BPFTuningOptions
    @OptionGroup var sweepPrecision: SweepPrecisionOption

    @Option(name: .long,
            help: ArgumentHelp("auto (BPF, or sock_diag polling when BPF cannot be used), bpf, or poll. (default: \(WatchMode.auto.rawValue))", valueName: "mode"),
            transform: WatchMode.argument)
    var mode = WatchMode.auto

    @Option(name: .long, parsing: .unconditional,
            help: ArgumentHelp("Poll interval when polling (100ms, 1s, 2m). (default: \(WatchCommand.defaultInterval))", valueName: "duration"),
            transform: DurationOption.pollInterval)
    var interval = WatchCommand.defaultInterval

    @OptionGroup var historyOptions: HistoryOptions

    @Option(name: .long, help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    @OptionGroup var libbpf: VerboseOption

    /// Metrics are served unless --metrics-address off.
    static let defaultMetricsAddress = "127.0.0.1:\(MetricsAddress.defaultPort)"

    var config: String? { configFile.config }
    var socket: String { listener.socket }
    var ringBytes: Int { tuning.ringBytes }
    var verbose: Bool { libbpf.verbose }
    var exportSettings: WatchExport.Options { exportOptions.options(defaultMetricsAddress: Self.defaultMetricsAddress) }

    func validate() throws {
        try ByteSizeOption.checkRange(queueBytes, option: "--queue-bytes")
        guard (1...65_536).contains(maxClients) else {
            throw ValidationError("--max-clients must be between 1 and 65536 (each client holds a file descriptor), not \(maxClients)")
        }
        if Logger.Level(rawValue: logLevel) == nil {
            throw ValidationError("--log-level must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if scope.pid != nil {
            throw ValidationError("serve --pid: the daemon outlives processes; select a service with --unit or a cgroup with --cgroup")
        }
        try historyOptions.check()
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
                throw ExitCode.status(.usage)
            }
        }
        let history: (filter: CompiledFilter, limits: ConnectionHistoryRecorder.History.Limits)?
        do {
            history = try historyOptions.resolve()
        } catch {
            StandardError.write("tcpnotify: --history: invalid filter: \(error)\n")
            throw ExitCode.status(.usage)
        }
        let cgroup: String?
        do {
            cgroup = try scope.resolve().cgroupPath
        } catch {
            StandardError.write("tcpnotify: \(error)\n")
            throw ExitCode.status(.usage)
        }
        let group: gid_t?
        do {
            group = try Self.resolveGroup(socketGroup)
        } catch let error as WatchInputs.Failure {
            StandardError.write("tcpnotify: \(error.message)\n")
            throw ExitCode.status(.usage)
        } catch {
            StandardError.write("tcpnotify: \(error)\n")
            throw ExitCode.status(.usage)
        }
        let export: WatchExport
        do {
            export = try WatchExport(options: exportSettings)
        } catch {
            throw ExitCode.usage("\(error)") // the address cannot be bound: another one is needed
        }
        var session = SessionSettings(inputs: inputs?.session ?? .everySocketNoRules)
        session.subscribesSlotZero = inputs != nil
        session.reload = config.map { WatchInputs.reload(config: $0, diagnose: false) }
        session.mode = mode
        session.cgroupPath = cgroup
        session.ringBufferBytes = ringBytes
        session.sweepPolicy = sweepPrecision.policy(tuning)
        session.pollIntervalNanoseconds = interval.nanoseconds
        session.pollIntervalText = interval.text
        session.verbose = verbose
        let settings = ServeDaemon.Settings(
            session: session, socketPath: socket, socketGroup: group, queueBytes: queueBytes,
            subscriberLimits: SubscriberLimits(
                maximumConnections: maxClients, idleTimeout: .nanoseconds(Int64(clientIdleTimeout.nanoseconds))),
            export: export, history: history,
            metricsConnections: historyOptions.metricsConnections ?? ConnectionSeries.defaultMaximumConnections)
        let code = BlockingAsync.exitStatus { await ServeDaemon.run(settings, logger: logger) }
        if code != 0 { throw ExitCode(code) }
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
