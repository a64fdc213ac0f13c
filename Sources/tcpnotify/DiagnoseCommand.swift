import ArgumentParser
import Foundation
import Glibc
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyRuntime

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

    @Argument(help: "Flow filter, ss style (e.g. 'dport = :5001').")
    var filter: [String] = []

    @Option(name: .customLong("for"),
            help: ArgumentHelp("Stop after this long (10s, 500ms, 2m; default: until SIGINT or SIGTERM).", valueName: "duration"))
    var duration: CommandDuration?

    @Option(help: "cgroup v2 directory to attach to (default: the cgroup v2 root, i.e. the whole machine).")
    var cgroup: String?

    @Option(help: "Output format: json or text (default: json unless stdout is a terminal).")
    var format: NotificationFormatter.Format?

    @Option(help: ArgumentHelp("Judge each flow on its last this many seconds.", valueName: "seconds"))
    var window: Double = 3

    @Flag(help: "Print libbpf's messages to stderr.")
    var verbose = false

    /// One record per flow at most this often; a window of 3 s then holds about six samples.
    static let samplingRule = "diagnose_sample=bytes_acked >= 0 every 500ms"

    func validate() throws {
        // Below a second the chrono stats' 4 ms jiffies make the shares noise (and the classifier wants a 1 s span).
        if !(window >= 1 && window <= 3600) { throw ValidationError("--window must be between 1 and 3600 seconds") }
    }

    func run() throws {
        let compiledFilter: CompiledFilter
        do {
            compiledFilter = try FilterExpression.compile(filter.joined(separator: " "))
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
        diagnosis.windowSeconds = window
        let outputFormat = format ?? (isatty(1) != 0 ? .text : .json)
        var settings = SessionSettings(inputs: SessionInputs(filter: compiledFilter, rules: rules))
        settings.cgroupPath = cgroup
        settings.durationSeconds = duration?.seconds
        settings.handlesSIGHUP = false
        settings.enrollExisting = false
        settings.sweepIntervalMilliseconds = 0
        settings.verbose = verbose
        let output = LineOutput()
        let consumer = DiagnoseOutput(output: output, format: outputFormat, configuration: diagnosis)
        let session = Session(settings: settings, output: output, events: SessionLog.diagnose(windowSeconds: window))
        do {
            consumer.finish(try session.run(consumer))
        } catch {
            StandardError.write("tcpnotify: \(error)\n")
            throw ExitCode(1)
        }
    }
}

/// `diagnose`'s consumer: every record feeds a `DiagnosisTracker`; a flow's verdict is printed when its
/// close record arrives, and everyone else's when the session ends; then the statistics line.
final class DiagnoseOutput: SessionConsumer {
    let output: LineOutput
    private let format: NotificationFormatter.Format
    private let tracker: DiagnosisTracker
    private let formatter: DiagnosisFormatter

    init(output: LineOutput, format: NotificationFormatter.Format, configuration: DiagnosisConfiguration) {
        self.output = output
        self.format = format
        tracker = DiagnosisTracker(configuration: configuration)
        formatter = DiagnosisFormatter(format: format)
    }

    /// Text reports take several lines each: a blank line between them.
    private func render(_ report: DiagnosisReport) -> String {
        format == .text ? formatter.text(for: report) + "\n" : formatter.text(for: report)
    }

    func deliver(_ batch: [SocketNotification], ruleNames: RuleNameBook) {
        output.write(Self.closedFlowReports(batch, tracker: tracker).map(render))
    }

    func finish(_ final: SourceStatistics) {
        output.write(tracker.reports(nowMonotonicNanoseconds: Clocks.monotonicNanoseconds()).map(render))
        output.write([NotificationFormatter(format: format, ruleNames: [], realtimeOffsetNanoseconds: 0).line(for: final.statistics)])
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
}

/// A length of time on the command line: `10s`, `500ms`, `2m`, `1h`, or plain seconds.
struct CommandDuration: ExpressibleByArgument {
    let seconds: Double

    init?(argument: String) {
        let units: [(suffix: String, seconds: Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("", 1)]
        for (suffix, scale) in units where argument.hasSuffix(suffix) {
            guard let value = Double(argument.dropLast(suffix.count)), value > 0, value.isFinite else { continue }
            seconds = value * scale
            return
        }
        return nil
    }
}
