import ArgumentParser
import Foundation
import Glibc
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyRuntime

struct WatchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Watch the selected sockets and print a line each time a rule becomes true.",
        discussion: """
            FILTER selects sockets like ss(8) filters: src/dst with addresses or prefixes (IPv4 and IPv6), \
            sport/dport with =, !=, <, <=, >, >= and :PORT, combined with and, or, not and parentheses. \
            src is the local end, dst the remote end. No filter: every TCP socket is a candidate.

            --when EXPR is a rule over tcp_info fields (see `tcpnotify fields`), with units \
            (rtt > 50ms), derived metrics (retrans_rate > 1%), windows (increase(total_retrans, 1s) > 16) \
            and controls (for 2s, every 10s, once); or a preset name (`tcpnotify rules --presets`). Each \
            top-level `or` alternative is a rule of its own; NAME=EXPR names a whole expression. Without \
            --when the built-in rules apply (`tcpnotify rules`). A rule notifies when it becomes true for \
            a socket and re-arms once it is false again. Sockets that notified get a final record when \
            they close.

            --config FILE holds the filter, tuples file and rules in YAML; SIGHUP reloads it without \
            losing the sockets already enrolled.
            """
    )

    @Argument(help: "Socket filter, ss style (e.g. 'dst 10.0.0.0/8 and dport = :443').")
    var filter: [String] = []

    @Option(name: .long, help: "A rule (repeatable).")
    var when: [String] = []

    @Option(name: .long, help: "File of exact 'LOCAL REMOTE' endpoint pairs to select (local port * = any).")
    var tuples: String?

    @Option(name: .long, help: "YAML file with filter, tuples and rules; reloaded on SIGHUP.")
    var config: String?

    @Option(name: .long, help: "cgroup v2 directory to attach to (default: the cgroup v2 root, i.e. the whole machine).")
    var cgroup: String?

    @Option(name: .long, help: "Output format: json or text (default: json unless stdout is a terminal).")
    var format: NotificationFormatter.Format?

    @Option(name: .long, help: "Ring buffer size in bytes (a power of two, at least one page).")
    var ringBytes: Int = 4 << 20

    @Option(name: .long, help: "Stop after this many seconds (default: run until SIGINT or SIGTERM).")
    var duration: Double?

    @Flag(name: .long, help: "Watch only connections established from now on (skip enrolling existing sockets).")
    var noExisting = false

    @Option(name: .long, help: "Period of the in-kernel sweep that checks rules on silent sockets (stalls); 0 turns it off. It runs only when a rule reads a time-based field (last_ack_recv, probes, ...), a window, or uses for/every.")
    var sweepInterval: String = "1s"

    @Flag(name: .long, help: "No final record when a socket that notified closes.")
    var noCloseRecords = false

    @Flag(name: .long, help: "Add each flow's current bottleneck verdict to its notifications (see `tcpnotify diagnose`).")
    var diagnose = false

    @Flag(name: .long, help: "Print libbpf's messages to stderr.")
    var verbose = false

    @Option(name: .long, help: ArgumentHelp(
        "auto (BPF, or sock_diag polling when BPF cannot be used), bpf, or poll.", valueName: "mode"))
    var mode: String = WatchMode.auto.rawValue

    @Option(name: .long, help: ArgumentHelp("Poll interval for --mode poll (100ms, 1s, 2m).", valueName: "duration"))
    var interval: String = "1s"

    @Option(name: .long, help: ArgumentHelp(
        "Serve Prometheus metrics at http://HOST:PORT/metrics (PORT alone: 127.0.0.1; default port 9464). Off unless given.",
        valueName: "host:port"))
    var metricsAddress: String?

    @Option(name: .long, help: ArgumentHelp(
        "Extra labels on the notification and diagnosis counters, comma-separated: remote_port, local_port, remote_address, cgroup, container, pod. Each multiplies the series (see the README for the cost).",
        valueName: "labels"))
    var metricsLabels: String?

    @Option(name: .long, help: ArgumentHelp(
        "Export notifications and diagnoses as OpenTelemetry log records to this OTLP/HTTP endpoint (e.g. http://127.0.0.1:4318). Needs a build with the OTLP trait.",
        valueName: "url"))
    var otlpEndpoint: String?

    var exportOptions: WatchExport.Options {
        WatchExport.Options(metricsAddress: metricsAddress, metricsLabels: metricsLabels, otlpEndpoint: otlpEndpoint)
    }

    /// `--sweep-interval`: a duration, or 0 for no sweep.
    func sweepIntervalMilliseconds() throws(DurationText.Failure) -> UInt64 {
        if sweepInterval == "0" { return 0 }
        let milliseconds = try DurationText.nanoseconds(sweepInterval) / 1_000_000
        guard milliseconds > 0 else { throw DurationText.Failure(message: "'\(sweepInterval)' is shorter than 1ms") }
        return milliseconds
    }

    func validate() throws {
        if ringBytes < 4096 || ringBytes > 1 << 30 {
            throw ValidationError("--ring-bytes must be between 4096 and 1 GiB")
        }
        if let duration, !(duration > 0) { throw ValidationError("--duration must be positive") }
        do {
            _ = try sweepIntervalMilliseconds()
        } catch {
            throw ValidationError("--sweep-interval: \(error)")
        }
        if config != nil && (!filter.isEmpty || !when.isEmpty || tuples != nil) {
            throw ValidationError("--config holds the filter, tuples and rules: give them there, not also on the command line")
        }
    }

    func run() throws {
        let inputs: WatchInputs
        do {
            inputs = try WatchInputs.load(
                config: config, filter: filter.joined(separator: " "), rules: when, tuplesPath: tuples,
                diagnose: diagnose)
        } catch {
            StandardError.write("tcpnotify: \(error.message)\n")
            throw ExitCode(2)
        }
        let watchMode: SessionMode, intervalNanoseconds: UInt64
        do {
            (watchMode, intervalNanoseconds) = try WatchInputs.parse(mode: mode, interval: interval, diagnose: diagnose)
        } catch {
            StandardError.write("tcpnotify: \(error.message)\n")
            throw ExitCode(2)
        }
        do {
            _ = try WatchExport.validate(exportOptions)
        } catch {
            StandardError.write("tcpnotify: \(error.message)\n")
            throw ExitCode(2)
        }
        let export: WatchExport
        do {
            export = try WatchExport(options: exportOptions)
        } catch {
            StandardError.write("tcpnotify: \(error)\n")
            throw ExitCode(1)
        }
        defer { export.finish() }

        var settings = SessionSettings(inputs: inputs.session)
        settings.mode = watchMode
        settings.pushOnlyReason = diagnose ? "--diagnose needs BPF (its verdicts come from in-kernel sampling)" : nil
        settings.cgroupPath = cgroup
        settings.ringBufferBytes = ringBytes
        settings.notifyOnClose = !noCloseRecords
        settings.enrollExisting = !noExisting
        settings.sweepIntervalMilliseconds = (try? sweepIntervalMilliseconds()) ?? 1000
        settings.pollIntervalNanoseconds = intervalNanoseconds
        settings.pollIntervalText = interval
        settings.durationSeconds = duration
        settings.reload = config.map { [diagnose] path in
            SessionReload(path: path) { () throws(SessionReloadFailure) -> SessionInputs in
                do throws(WatchInputs.Failure) {
                    return try WatchInputs.load(config: path, filter: "", rules: [], tuplesPath: nil, diagnose: diagnose).session
                } catch {
                    throw SessionReloadFailure(error.message)
                }
            }
        }
        settings.measuresRunTime = export.metrics != nil
        settings.verbose = verbose

        let output = LineOutput()
        let consumer = WatchOutput(
            output: output, format: format ?? (isatty(1) != 0 ? .text : .json),
            ruleNames: inputs.rules.rules.map(\.name), export: export, diagnose: diagnose)
        let session = Session(settings: settings, output: output, events: SessionLog.standard)
        export.setRefresh { metrics in
            guard let current = session.statistics() else { return }
            metrics.update(current.statistics, watchedSockets: current.watchedSockets)
            if let runTime = current.runTimeNanoseconds, let runs = current.runCount {
                metrics.updateKernelRunTime(nanoseconds: runTime, count: runs)
            }
        }
        defer { export.setRefresh { _ in } }
        do {
            consumer.finish(try session.run(consumer))
        } catch {
            StandardError.write("tcpnotify: \(error)\n")
            throw ExitCode(1)
        }
    }
}

extension NotificationFormatter.Format: ExpressibleByArgument {}

/// `--mode`'s values.
typealias WatchMode = SessionMode
