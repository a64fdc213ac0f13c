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
import TCPNotifyRuntime
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

    @Option(name: .long, help: "YAML file with a filter, tuples and rules for the daemon's own subscription (stdout); reloaded on SIGHUP.")
    var config: String?

    @Option(name: .long, help: "Unix socket for subscribers.")
    var socket: String = SubscriberProtocol.defaultSocketPath

    @Option(name: .long, help: "Group allowed to subscribe besides root (default: 'tcpnotify' if it exists, else root only).")
    var socketGroup: String?

    @Option(name: .long, help: "cgroup v2 directory to attach to (default: the cgroup v2 root, i.e. the whole machine).")
    var cgroup: String?

    @Option(name: .long, help: ArgumentHelp(
        "Serve Prometheus metrics at http://HOST:PORT/metrics (PORT alone: 127.0.0.1); 'off' serves none.",
        valueName: "host:port"))
    var metricsAddress: String = "127.0.0.1:\(MetricsAddress.defaultPort)"

    @Option(name: .long, help: ArgumentHelp(
        "Extra labels on the notification counters, comma-separated: remote_port, local_port, remote_address, cgroup, container, pod.",
        valueName: "labels"))
    var metricsLabels: String?

    @Option(name: .long, help: ArgumentHelp(
        "Also export every notification as an OTLP/HTTP log record to URL (builds with the OTLP trait).",
        valueName: "url"))
    var otlpEndpoint: String?

    var exportOptions: WatchExport.Options {
        WatchExport.Options(
            metricsAddress: metricsAddress == "off" ? nil : metricsAddress, metricsLabels: metricsLabels,
            otlpEndpoint: otlpEndpoint)
    }

    @Option(name: .long, help: "Per-subscriber queue in bytes; a subscriber that reads slower loses notifications beyond it (counted and reported to it).")
    var queueBytes: Int = 4 << 20

    @Option(name: .long, help: "Ring buffer size in bytes (a power of two, at least one page).")
    var ringBytes: Int = 4 << 20

    @Option(name: .long, help: "Period of the in-kernel sweep over enrolled sockets (stall rules); 0 turns it off.")
    var sweepInterval: String = "1s"

    @Option(name: .long, help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    @Flag(name: .long, help: "Print libbpf's messages to stderr.")
    var verbose = false

    func validate() throws {
        if ringBytes < 4096 || ringBytes > 1 << 30 { throw ValidationError("--ring-bytes must be between 4096 and 1 GiB") }
        if queueBytes < 4096 || queueBytes > 1 << 30 { throw ValidationError("--queue-bytes must be between 4096 and 1 GiB") }
        if Logger.Level(rawValue: logLevel) == nil {
            throw ValidationError("--log-level must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if sweepInterval != "0" {
            do {
                guard try DurationText.nanoseconds(sweepInterval) >= 1_000_000 else { throw ValidationError("--sweep-interval: shorter than 1ms") }
            } catch let error as ValidationError {
                throw error
            } catch {
                throw ValidationError("--sweep-interval: \(error)")
            }
        }
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
            _ = try WatchExport.validate(exportOptions)
        } catch let error as WatchInputs.Failure {
            StandardError.write("tcpnotify: \(error.message)\n")
            throw ExitCode(2)
        } catch {
            StandardError.write("tcpnotify: \(error)\n")
            throw ExitCode(2)
        }
        let export: WatchExport
        do {
            export = try WatchExport(options: exportOptions)
        } catch {
            StandardError.write("tcpnotify: \(error)\n")
            throw ExitCode(1)
        }
        let sweepMilliseconds = sweepInterval == "0" ? 0 : ((try? DurationText.nanoseconds(sweepInterval)) ?? 1_000_000_000) / 1_000_000

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
