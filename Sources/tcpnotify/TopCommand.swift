import ArgumentParser
import Foundation
import Glibc
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyExport
import TCPNotifyRuntime
import TCPNotifyTop

struct TopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top",
        abstract: "A live full-screen view of the selected connections: rates, RTTs, retransmits and each one's verdict.",
        discussion: """
            Selects connections like `watch` (FILTER, --tuples, --cgroup/--unit/--pid) and samples them like \
            `diagnose`: records at TCP events and from the sweep over enrolled sockets (no polling of each \
            socket), judged on the last --window seconds. The view is redrawn every second.

            Keys: < and > move the sort to the previous/next column, a column's letter sorts by it (again: \
            reversed): l local, f remote, c cgroup, s state, v verdict, h held, r srtt, m min_rtt, \
            j rttvar, w cwnd, d delivery rate, t throughput, x retransmits, n retransmits in the last 10 s, \
            u rule. / changes the view filter (ss syntax), Up/Down select, Enter shows a connection's \
            tcp_info, verdict evidence and history (Enter or Esc goes back), p pauses, q quits.

            --batch prints frames as plain text (like top -b), as do TERM=dumb and an output that is not a \
            terminal; NO_COLOR draws without colours.
            """
    )

    @OptionGroup var selection: SelectionOptions
    @OptionGroup var rules: RuleOptions
    @OptionGroup var scope: CgroupOption
    @OptionGroup var tuning: BPFTuningOptions
    @OptionGroup var libbpf: VerboseOption

    @Option(name: .long,
            help: ArgumentHelp("auto (BPF, or sock_diag polling when BPF cannot be used), bpf, or poll. (default: auto)", valueName: "mode"),
            transform: WatchMode.argument)
    var mode = WatchMode.auto

    @Option(name: .long, parsing: .unconditional,
            help: ArgumentHelp("Poll interval for --mode poll (100ms, 1s). (default: 1s)", valueName: "duration"),
            transform: DurationOption.pollInterval)
    var interval = TimeSpan.seconds(1)

    @Option(parsing: .unconditional,
            help: ArgumentHelp("Judge each flow on its last this many seconds. (default: 3)", valueName: "seconds"),
            transform: DurationOption.window)
    var window = DiagnoseCommand.defaultWindow

    @Flag(help: "Print frames as plain text to stdout instead of the full-screen view.")
    var batch = false

    @Option(help: ArgumentHelp("Stop after this many frames (one a second).", valueName: "n"))
    var iterations: Int?

    @Option(help: ArgumentHelp("Plain frames' width in columns (default: $COLUMNS, else 120).", valueName: "columns"))
    var width: Int?

    @Option(help: ArgumentHelp("Sort by this column at the start: its title or letter (THRU, t, SRTT, r, ...). (default: THRU)", valueName: "column"),
            transform: TopCommand.sortColumn)
    var sort: TopSort = .standard

    func validate() throws {
        if let iterations, iterations < 1 { throw ValidationError("--iterations: give 1 or more frames") }
        if let width, width < 40 || width > 1000 { throw ValidationError("--width: give 40 to 1000 columns") }
    }

    static func sortColumn(_ text: String) throws -> TopSort {
        let column = text.count == 1 ? text.first.flatMap { TopColumn.forLetter(Character($0.lowercased())) }
            : TopColumn(rawValue: text.uppercased())
        guard let column else {
            let names = TopColumn.allCases.map { "\($0.rawValue) (\($0.letter))" }.joined(separator: ", ")
            throw InvalidValue(description: "'\(text)' is no column; give one of \(names)")
        }
        return TopSort(column: column)
    }

    func run() throws {
        let inputs: WatchInputs
        do {
            inputs = try WatchInputs.load(config: nil, filter: selection.filter.text, rules: rules.when,
                                          tuplesPath: selection.tuples, diagnose: true)
        } catch {
            StandardError.write("tcpnotify: \(error.message)\n")
            throw ExitCode(2)
        }
        let resolvedScope = try scope.resolveOrExit()
        var settings = SessionSettings(inputs: inputs.session)
        settings.mode = mode
        settings.cgroupPath = resolvedScope.cgroupPath
        settings.ringBufferBytes = tuning.ringBytes
        // The sampling rule sets the pace (as in diagnose), not the rules' derived schedule.
        settings.sweepIntervalMilliseconds = tuning.sweepInterval.map { $0.nanoseconds / 1_000_000 } ?? 1000
        // Every flow gets its baseline sample at the start: verdicts for running flows a second later.
        settings.enrollExisting = true
        settings.sweepAtStart = true
        settings.pollIntervalNanoseconds = interval.nanoseconds
        settings.pollIntervalText = interval.text
        settings.handlesSIGHUP = false
        settings.verbose = libbpf.verbose

        let output = chooseOutput()
        if let problem = TopDisplay.problem(with: output) {
            StandardError.write("tcpnotify: \(problem)\n")
            throw ExitCode(2)
        }
        var diagnosis = DiagnosisConfiguration()
        diagnosis.windowSeconds = window.seconds
        let start = Clocks.processStartMonotonicNanoseconds()
        let cgroups = CgroupPaths.system()
        let model = TopModel(configuration: diagnosis, startMonotonicNanoseconds: start) { id in
            cgroups?.path(for: id).map { $0 == "/" ? "/" : String($0.split(separator: "/").last ?? "") }
        }
        let sampler = TopStatusSampler(startMonotonicNanoseconds: start)
        let lines = LineOutput()
        let holder = DisplayHolder()
        let consumer = TopConsumer(model: model) { _ in holder.display?.start() }
        // On the screen, the session's messages go to the status line; plain frames leave stderr free.
        let onScreen = if case .screen = output { true } else { false }
        let events: SessionEventHandler = { event in
            sampler.note(event)
            if !onScreen { SessionLog.standard(event) }
        }
        let session = Session(settings: settings, output: lines, events: events)
        let display = TopDisplay(consumer: consumer, sampler: sampler, lines: lines, output: output, iterations: iterations,
                                 sort: sort, statistics: { session.statistics() })
        holder.display = display
        let final: SourceStatistics
        do {
            final = try session.run(resolvedScope.wrap(consumer))
        } catch {
            display.stop()
            if onScreen { SessionLog.write(sampler.events) }
            StandardError.write("tcpnotify: \(error)\n")
            throw ExitCode(1)
        }
        display.stop()
        if onScreen { SessionLog.write(sampler.events) }
        if let failure = display.failure {
            StandardError.write("tcpnotify: \(failure)\n")
            throw ExitCode(1)
        }
        let drops = final.statistics.ringDrops + final.statistics.userDrops
        if drops > 0 { StandardError.write("tcpnotify: \(drops) record(s) dropped (ring \(final.statistics.ringDrops), user \(final.statistics.userDrops))\n") }
    }

    /// The screen when stdout is a terminal that can address its cursor; plain frames otherwise.
    func chooseOutput() -> TopOutput {
        let environment = ProcessInfo.processInfo.environment
        let term = environment["TERM"] ?? ""
        let plainWidth = width ?? environment["COLUMNS"].flatMap(Int.init).map { min(max($0, 40), 1000) } ?? 120
        if batch || isatty(1) == 0 || term.isEmpty || term == "dumb" { return .plain(width: plainWidth) }
        // NO_COLOR: present and not empty (no-color.org).
        return .screen(colours: (environment["NO_COLOR"] ?? "").isEmpty)
    }
}

/// The display, set once before the session starts (the consumer's start hook needs it).
final class DisplayHolder: @unchecked Sendable {
    var display: TopDisplay?
}
