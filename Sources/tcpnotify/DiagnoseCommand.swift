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
            Selects flows like `watch` (FILTER, ss style): the connections that exist already (in every \
            network namespace) and those established while it runs. Each is sampled through the in-kernel \
            rules, a record at most every 500 ms (at its TCP events, and from a sweep over the enrolled \
            sockets every 500 ms), and judged on the deltas over its last --window seconds: busy, \
            rwnd-limited and sndbuf-limited time, the rate sampler's application-limited mark, srtt against \
            min_rtt, retransmitted bytes. A flow's first sample is the baseline: a connection that existed \
            before the start is judged on what it does from then on, its first verdict about a second later.

            Verdicts: application-limited, receiver-window-limited, send-buffer-limited, bufferbloat, \
            packet-loss, network-limited, idle or insufficient-data; a socket that mostly receives ("end": \
            "receiver") is judged on what it sees: reader-limited (the local application does not keep up), \
            receiver-window-limited, packet-loss (segments out of order), peer-limited or idle. Each with a \
            confidence, the evidence and \
            secondary signals (docs/diagnosis.md explains each). A `verdict` line comes when a flow gets its \
            first verdict (elapsed_ms: since the command started) and whenever its verdict changes (with \
            how long the previous one held); --interval adds one per flow that moved data in the interval. \
            When a flow closes, and for every live flow when the command ends (SIGINT, SIGTERM or --for), a \
            `diagnosis` line gives its last verdict and its life: share of time under each verdict, bytes, \
            retransmissions, min and average RTT.

            --once judges the matching connections that exist at the start, prints one verdict line per \
            connection as soon as it has one, and exits (after --for, default 10s, at the latest). Exit \
            status: 0 when no connection is impaired, 3 when one is receiver-window-limited, \
            send-buffer-limited, bufferbloat, packet-loss or reader-limited (1: BPF unavailable, 2: bad input).
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
    @OptionGroup var reportOption: ReportOption

    @Flag(help: "One verdict per connection that exists now, then exit: 0 if none is impaired, 3 if one is.")
    var once = false

    @Option(parsing: .unconditional,
            help: ArgumentHelp(
                "Also print each active flow's verdict this often (10s, 500ms; at least 500ms; default: only when it changes).",
                valueName: "duration"),
            transform: DurationOption.verdictInterval)
    var interval: TimeSpan?

    /// One record per flow at most this often; a window of 3 s then holds about six samples.
    static let samplingRule = DiagnosisConfiguration.samplingRule

    func validate() throws {
        if once && interval != nil { throw ValidationError("--once prints one verdict per flow: --interval does not apply") }
    }

    /// `--once` stops after this long when some flow has no verdict yet.
    static let onceDefaultSeconds = 10.0

    func run() throws {
        let compiledFilter: CompiledFilter
        do {
            compiledFilter = try FilterExpression.compile(selection.text)
        } catch {
            throw ExitCode.usage("invalid filter: \(error)")
        }
        let rules: CompiledRules
        do {
            rules = try RuleExpression.compile([Self.samplingRule])
        } catch {
            StandardError.write("tcpnotify: internal error: the sampling rule '\(Self.samplingRule)' does not compile: \(error)\n")
            throw ExitCode(1)
        }
        let resolvedScope = try scope.resolveOrExit()
        var diagnosis = DiagnosisConfiguration()
        diagnosis.windowSeconds = window.seconds
        var settings = SessionSettings(inputs: SessionInputs(filter: compiledFilter, rules: rules))
        settings.cgroupPath = resolvedScope.cgroupPath
        settings.durationSeconds = duration?.seconds ?? (once ? Self.onceDefaultSeconds : nil)
        settings.handlesSIGHUP = false
        // Existing connections are enrolled and swept at once: each gets its baseline sample at the start.
        settings.enrollExisting = true
        settings.sweepIntervalMilliseconds = 500
        settings.sweepAtStart = true
        settings.verbose = libbpf.verbose
        let start = Clocks.processStartMonotonicNanoseconds()
        let report = try CommandReport.open(reportOption, startMonotonicNanoseconds: start, judging: false)
        let lines = LineOutput()
        let consumer = DiagnoseOutput(
            output: lines, format: output.resolvedFormat, configuration: diagnosis,
            startMonotonicNanoseconds: start, once: once,
            intervalNanoseconds: interval?.nanoseconds, report: report?.recorder)
        let session = Session(settings: settings, output: lines, events: SessionLog.diagnose(windowSeconds: window.seconds))
        do {
            consumer.finish(try session.run(resolvedScope.wrap(consumer)))
        } catch {
            throw ExitCode.reporting(error)
        }
        try report?.write(nowMonotonicNanoseconds: MonotonicClock.nanoseconds())
        if consumer.foundImpairment { throw ExitCode.status(.impaired) }
    }
}
