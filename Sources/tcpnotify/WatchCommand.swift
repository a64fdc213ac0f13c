import ArgumentParser
import Foundation
import Glibc
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyRuntime
import TCPNotifyServer

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
            and controls (for 2s, every 10s, once, each); or a preset name (`tcpnotify rules --presets`). Each \
            top-level `or` alternative is a rule of its own; NAME=EXPR names a whole expression. Without \
            --when the built-in rules apply (`tcpnotify rules`). A rule notifies when it becomes true for \
            a socket and re-arms once it is false again. Sockets that notified get a final record when \
            they close.

            --config FILE holds the filter, tuples file and rules in YAML; SIGHUP reloads it without \
            losing the sockets already enrolled.
            """
    )

    @OptionGroup var selection: SelectionOptions
    @OptionGroup var rules: RuleOptions
    @OptionGroup var configFile: ConfigOption
    @OptionGroup var scope: CgroupOption
    @OptionGroup var output: OutputOptions
    @OptionGroup var tuning: BPFTuningOptions
    @OptionGroup var sweepPrecision: SweepPrecisionOption

    @Option(name: .long, parsing: .unconditional,
            help: "Stop after this many seconds (default: run until SIGINT or SIGTERM).", transform: DurationOption.stopAfter)
    var duration: TimeSpan?

    @Flag(name: .long, help: "Watch only connections established from now on (skip enrolling existing sockets).")
    var noExisting = false

    @Flag(name: .long, help: "No final record when a socket that notified closes.")
    var noCloseRecords = false

    @Flag(name: .long, help: "Add each flow's current bottleneck verdict to its notifications (see `tcpnotify diagnose`).")
    var diagnose = false

    @OptionGroup var libbpf: VerboseOption

    @Option(name: .long,
            help: ArgumentHelp("auto (BPF, or sock_diag polling when BPF cannot be used), bpf, or poll. (default: \(WatchMode.auto.rawValue))", valueName: "mode"),
            transform: WatchMode.argument)
    var mode = WatchMode.auto

    @Option(name: .long, parsing: .unconditional,
            help: ArgumentHelp("Poll interval for --mode poll (100ms, 1s, 2m). (default: \(Self.defaultInterval))", valueName: "duration"),
            transform: DurationOption.pollInterval)
    var interval = Self.defaultInterval

    static let defaultInterval = TimeSpan.seconds(1)

    @OptionGroup var export: ExportOptions
    @OptionGroup var reportOption: ReportOption

    @Option(name: .long,
            help: ArgumentHelp("Only these tcp_info fields in JSON lines, comma-separated (names as `tcpnotify fields` lists them): shorter lines, faster output. (default: every field the kernel reports)", valueName: "list"))
    var fields: String?

    /// `--fields`, checked.
    var selectedFields: TCPInfoFieldSet? {
        get throws {
            guard let fields else { return nil }
            do throws(TCPInfoFieldSelection.SelectionError) {
                return try TCPInfoFieldSelection.parse(fields)
            } catch {
                throw ValidationError(error.description)
            }
        }
    }

    func validate() throws {
        _ = try selectedFields
        if fields != nil && output.format == .text {
            throw ValidationError("--fields selects the tcp_info fields of JSON lines; --format text has fixed columns")
        }
        if configFile.config != nil && (!selection.filter.isEmpty || !rules.when.isEmpty || selection.tuples != nil) {
            throw ValidationError("--config holds the filter, tuples and rules: give them there, not also on the command line")
        }
        if mode == .poll && diagnose {
            throw ValidationError("--diagnose needs BPF (its verdicts come from in-kernel sampling); it cannot be used with --mode poll")
        }
        try export.check(defaultMetricsAddress: nil)
    }

    func run() throws {
        let inputs: WatchInputs
        do {
            inputs = try WatchInputs.load(
                config: configFile.config, filter: selection.filter.text, rules: rules.when, tuplesPath: selection.tuples,
                diagnose: diagnose)
        } catch {
            throw ExitCode.usage(error.message)
        }
        // (--report: the flows' verdicts judged on the records watch gets; --diagnose samples every 500 ms)
        let report = try CommandReport.open(reportOption, startMonotonicNanoseconds: Clocks.processStartMonotonicNanoseconds(), judging: true)
        let export: WatchExport
        do {
            export = try WatchExport(options: self.export.options(defaultMetricsAddress: nil))
        } catch {
            throw ExitCode.usage("\(error)") // the address cannot be bound: another one is needed
        }
        defer { export.finish() }

        let resolvedScope = try scope.resolveOrExit()
        var settings = SessionSettings(inputs: inputs.session)
        settings.mode = mode
        settings.pushOnlyReason = diagnose ? "--diagnose needs BPF (its verdicts come from in-kernel sampling)" : nil
        settings.cgroupPath = resolvedScope.cgroupPath
        settings.ringBufferBytes = tuning.ringBytes
        settings.notifyOnClose = !noCloseRecords
        settings.enrollExisting = !noExisting
        switch sweepPrecision.policy(tuning) {
        case .forced(let milliseconds): settings.sweepIntervalMilliseconds = milliseconds
        case .derived(let precision): settings.sweepPrecision = precision
        }
        settings.pollIntervalNanoseconds = interval.nanoseconds
        settings.pollIntervalText = interval.text
        settings.durationSeconds = duration?.seconds
        settings.reload = configFile.config.map { WatchInputs.reload(config: $0, diagnose: diagnose) }
        settings.measuresRunTime = export.metrics != nil
        settings.verbose = libbpf.verbose

        let lines = LineOutput()
        let consumer = WatchOutput(
            output: lines, format: output.resolvedFormat,
            ruleNames: inputs.rules.rules.map(\.name), export: export, diagnose: diagnose, fields: try selectedFields,
            report: report?.recorder)
        let session = Session(settings: settings, output: lines, events: export.observing(SessionLog.standard))
        export.setRefresh { metrics in
            guard let current = session.statistics() else { return }
            metrics.update(current.statistics, watchedSockets: current.watchedSockets)
            if let runTime = current.runTimeNanoseconds, let runs = current.runCount {
                metrics.updateKernelRunTime(nanoseconds: runTime, count: runs)
            }
        }
        defer { export.setRefresh { _ in } }
        do {
            consumer.finish(try session.run(resolvedScope.wrap(consumer)))
        } catch {
            throw ExitCode.reporting(error)
        }
        try report?.write(nowMonotonicNanoseconds: MonotonicClock.nanoseconds())
    }
}


/// `--mode`'s values.
typealias WatchMode = SessionMode
