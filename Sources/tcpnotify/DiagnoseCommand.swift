import ArgumentParser
import Foundation
import Glibc
import TCPNotifyBPF
import TCPNotifyCore

struct DiagnoseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diagnose",
        abstract: "Tell where each selected flow's bottleneck is, from the kernel's own tcp_info.",
        discussion: """
            Selects flows like `watch` (FILTER, ss style) and samples each one through the in-kernel rules: a \
            record at most every 500 ms while the flow has TCP events, never by polling sockets. Each flow is \
            judged on the deltas over its last --window seconds: busy, rwnd-limited and sndbuf-limited time, \
            the rate sampler's application-limited mark, srtt against min_rtt, retransmitted bytes.

            A verdict is printed per flow when it closes, and for every live flow when the command ends \
            (SIGINT, SIGTERM or --for): application-limited, receiver-window-limited, send-buffer-limited, \
            bufferbloat, packet-loss, network-limited, idle or insufficient-data, with a confidence, the \
            evidence and secondary signals. docs/diagnosis.md explains each verdict.
            """
    )

    @OptionGroup var selection: FilterArgument

    @Option(name: .customLong("for"), parsing: .unconditional,
            help: ArgumentHelp("Stop after this long (10s, 500ms, 2m; default: until SIGINT or SIGTERM).", valueName: "duration"),
            transform: DurationOption.stopAfter)
    var duration: TimeSpan?

    @OptionGroup var scope: CgroupOption
    @OptionGroup var output: OutputOptions

    @Option(parsing: .unconditional,
            help: ArgumentHelp("Judge each flow on its last this many seconds. (default: \(Self.defaultWindow))", valueName: "seconds"),
            transform: DurationOption.window)
    var window = Self.defaultWindow

    static let defaultWindow = TimeSpan(nanoseconds: 3_000_000_000, text: "3")

    @OptionGroup var libbpf: VerboseOption

    /// One record per flow at most this often; a window of 3 s then holds about six samples.
    static let samplingRule = "diagnose_sample=bytes_acked >= 0 every 500ms"

    func run() throws {
        let compiledFilter: CompiledFilter
        do {
            compiledFilter = try FilterExpression.compile(selection.text)
        } catch {
            StandardError.write("tcpnotify: invalid filter: \(error)\n")
            throw ExitCode(2)
        }
        let rules: CompiledRules
        do {
            rules = try RuleExpression.compile([Self.samplingRule])
        } catch {
            StandardError.write("tcpnotify: internal error: the sampling rule '\(Self.samplingRule)' does not compile: \(error)\n")
            throw ExitCode(1)
        }
        var diagnosis = DiagnosisConfiguration()
        diagnosis.windowSeconds = window.seconds
        let session = DiagnoseSession(
            configuration: WatchConfiguration(filter: compiledFilter, rules: rules), diagnosis: diagnosis,
            cgroupPath: scope.cgroup, format: output.resolvedFormat,
            durationSeconds: duration?.seconds, verbose: libbpf.verbose)
        do {
            try session.run()
        } catch {
            StandardError.write("tcpnotify: \(error)\n")
            throw ExitCode(1)
        }
    }
}

/// One `diagnose` run: load, attach, feed every record into a `DiagnosisTracker`, print a flow's verdict
/// when its close record arrives, and everyone else's when stopped; then the statistics line.
struct DiagnoseSession {
    let configuration: WatchConfiguration
    let diagnosis: DiagnosisConfiguration
    let cgroupPath: String?
    let format: NotificationFormatter.Format
    let durationSeconds: Double?
    let verbose: Bool

    func run() throws {
        let stopSignals = StopSignals(reload: false)

        let attachPath = try cgroupPath ?? WatchSession.defaultCgroup()
        let program = try TCPNotifyProgram(configuration: configuration, logLibbpf: verbose)
        let tracker = DiagnosisTracker(configuration: diagnosis)
        let formatter = DiagnosisFormatter(format: format)
        // Text reports take several lines each: a blank line between them.
        let render: @Sendable (DiagnosisReport) -> String = { [format] report in
            format == .text ? formatter.text(for: report) + "\n" : formatter.text(for: report)
        }
        let output = LineOutput()
        let reader = try program.makeReader { batch in
            output.write(Self.closedFlowReports(batch, tracker: tracker).map(render))
        }
        reader.start()
        let attachment = try program.attach(cgroupPath: attachPath)
        StandardError.write(
            "tcpnotify: diagnosing flows in cgroup \(attachPath) (link \(attachment.linkID)) over \(diagnosis.windowSeconds) s windows; "
                + "SIGINT or SIGTERM stops\n")

        stopSignals.wait(duration: durationSeconds, output: output)

        attachment.detach()
        reader.stop()
        let live = tracker.reports(nowMonotonicNanoseconds: Self.monotonicNanoseconds())
        output.write(live.map(render))
        var statistics = try program.kernelStatistics()
        statistics.received = reader.receivedCount
        statistics.userDrops = reader.malformedCount
        output.write([NotificationFormatter(format: format, ruleNames: [], realtimeOffsetNanoseconds: 0).line(for: statistics)])
    }

    /// Records a batch; the flows it closed are reported and forgotten.
    static func closedFlowReports(_ batch: [SocketNotification], tracker: DiagnosisTracker) -> [DiagnosisReport] {
        var closed: [UInt64] = []
        for notification in batch {
            tracker.record(notification)
            if notification.trigger == .close { closed.append(notification.cookie) }
        }
        defer { closed.forEach(tracker.forget(cookie:)) }
        return closed.compactMap { tracker.report(cookie: $0) }
    }

    /// CLOCK_MONOTONIC, the clock of record timestamps: flows silent for longer than the window are idle.
    static func monotonicNanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }
}
