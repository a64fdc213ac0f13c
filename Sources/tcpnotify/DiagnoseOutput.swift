import Synchronization
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyReport
import TCPNotifyRuntime

/// `diagnose`'s consumer: every record feeds a `DiagnosisTimeline`, whose verdict lines (first verdict,
/// changes, `--interval`) and per-flow reports (at close, and for live flows at the end) are printed;
/// then the statistics line. With `--once`: one verdict line per connection that existed at the start,
/// then the session ends.
final class DiagnoseOutput: SessionConsumer {
    let output: LineOutput
    private let format: NotificationFormatter.Format
    private let formatter: DiagnosisFormatter
    private let timeline: DiagnosisTimeline
    private let once: Bool
    private let intervalNanoseconds: UInt64?
    /// --report: every record and every verdict.
    private let report: ReportRecorder?
    private let state = Mutex(State())

    private struct State {
        /// `--once`: set once the existing connections are known (their first records are in).
        var started = false
        /// `--once`: connections still waiting for their verdict.
        var pending = Set<UInt64>()
        var impaired = false
        var nextIntervalNanoseconds: UInt64 = 0
    }

    init(output: LineOutput, format: NotificationFormatter.Format, configuration: DiagnosisConfiguration,
         startMonotonicNanoseconds: UInt64, once: Bool, intervalNanoseconds: UInt64?, report: ReportRecorder? = nil) {
        self.output = output
        self.format = format
        formatter = DiagnosisFormatter(format: format)
        timeline = DiagnosisTimeline(configuration: configuration, startMonotonicNanoseconds: startMonotonicNanoseconds)
        self.once = once
        self.intervalNanoseconds = intervalNanoseconds
        self.report = report
        if let intervalNanoseconds {
            state.withLock { $0.nextIntervalNanoseconds = MonotonicClock.nanoseconds() + intervalNanoseconds }
        }
    }

    /// `--once` found an impaired flow (see `Bottleneck.isImpairment`).
    var foundImpairment: Bool { once && state.withLock { $0.impaired } }

    func deliver(_ batch: [SocketNotification], ruleNames: RuleNameBook) {
        let outputs = timeline.record(batch)
        report?.record(batch)
        report?.record(outputs)
        output.write(once ? onceLines(outputs) : outputs.map(render))
    }

    func started(kind: SourceKind) {
        guard once else { return }
        let now = MonotonicClock.nanoseconds()
        var lines: [String] = []
        let open = timeline.openFlows
        state.withLock { state in
            for cookie in open {
                // A verdict already (unlikely this early): print it now.
                if timeline.verdict(cookie: cookie) != nil, let (report, _) = timeline.current(cookie: cookie, nowMonotonicNanoseconds: now) {
                    lines.append(onceLine(report, at: now, state: &state))
                } else {
                    state.pending.insert(cookie)
                }
            }
            state.started = true
        }
        if open.isEmpty { StandardError.write("tcpnotify: no matching connection to diagnose\n") }
        output.write(lines)
    }

    func tick(nowMonotonicNanoseconds now: UInt64) {
        let intervalDue = state.withLock { state -> Bool in
            guard let intervalNanoseconds, now >= state.nextIntervalNanoseconds else { return false }
            state.nextIntervalNanoseconds = max(state.nextIntervalNanoseconds + intervalNanoseconds, now)
            return true
        }
        let outputs = timeline.tick(nowMonotonicNanoseconds: now, interval: intervalDue)
        report?.record(outputs)
        output.write(once ? onceLines(outputs) : outputs.map(render))
    }

    var isFinished: Bool { once && state.withLock { $0.started && $0.pending.isEmpty } }

    /// The reports of the flows still open (`--once`: the verdict lines of those still without one), then
    /// the statistics line.
    func finish(_ final: SourceStatistics) {
        let now = MonotonicClock.nanoseconds()
        let finals = timeline.finish(nowMonotonicNanoseconds: now).map { DiagnosisTimeline.Output.closed($0.0, $0.1) }
        report?.record(finals)
        if once {
            let pending = state.withLock { $0.pending.sorted() }
            let lines = pending.compactMap { cookie -> String? in
                guard let (report, _) = timeline.current(cookie: cookie, nowMonotonicNanoseconds: now) else { return nil }
                return state.withLock { onceLine(report, at: now, state: &$0) }
            }
            output.write(lines)
        } else {
            output.write(finals.map(render))
        }
        output.write([NotificationFormatter(format: format, ruleNames: [], realtimeOffsetNanoseconds: 0).line(for: final.statistics)])
    }

    /// Text reports take several lines each: a blank line between them.
    private func render(_ item: DiagnosisTimeline.Output) -> String {
        switch item {
        case .verdict(let update):
            return formatter.text(for: update)
        case .closed(let report, let summary):
            let text = formatter.text(for: report, summary: summary)
            return format == .text ? text + "\n" : text
        }
    }

    /// `--once`: the first verdict (or the close) of each connection waiting for one; nothing else.
    private func onceLines(_ outputs: [DiagnosisTimeline.Output]) -> [String] {
        var finished = false
        let lines = state.withLock { state -> [String] in
            guard state.started else { return [] }
            var lines: [String] = []
            for item in outputs {
                switch item {
                case .verdict(let update) where update.kind == .first && state.pending.contains(update.report.cookie):
                    lines.append(onceLine(update.report, at: timeline.startNanoseconds + update.elapsedNanoseconds, state: &state))
                case .closed(let report, _) where state.pending.contains(report.cookie):
                    lines.append(onceLine(report, at: MonotonicClock.nanoseconds(), state: &state))
                default:
                    continue
                }
            }
            finished = !lines.isEmpty && state.pending.isEmpty
            return lines
        }
        if finished { StopSignals.wake() }
        return lines
    }

    /// The one verdict line of a connection (`--once`); it is no longer pending.
    private func onceLine(_ report: DiagnosisReport, at time: UInt64, state: inout State) -> String {
        state.pending.remove(report.cookie)
        if report.diagnosis.bottleneck.isImpairment { state.impaired = true }
        let elapsed = time > timeline.startNanoseconds ? time - timeline.startNanoseconds : 0
        return formatter.text(for: VerdictUpdate(kind: .first, report: report, elapsedNanoseconds: elapsed))
    }
}
