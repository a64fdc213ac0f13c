import Synchronization
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyReport
import TCPNotifyRuntime
import TCPNotifyServer

/// `watch`'s consumer: each record as a line (JSON or text) on stdout, and to the metrics and OTLP
/// exporters; with `--diagnose`, the flows' verdicts added. The same for push and polling.
final class WatchOutput: SessionConsumer {
    let output: LineOutput
    private let formatter: NotificationFormatter
    private let export: WatchExport
    private let diagnoses: DiagnosedOutput?
    /// --report: every record, shown or not.
    private let report: ReportRecorder?

    init(output: LineOutput, format: NotificationFormatter.Format, ruleNames: [String], export: WatchExport, diagnose: Bool,
         report: ReportRecorder? = nil) {
        self.output = output
        var formatter = NotificationFormatter(
            format: format, ruleNames: ruleNames, realtimeOffsetNanoseconds: Clocks.realtimeOffsetNanoseconds())
        formatter.cgroupAttribution = export.cgroupPaths?.resolver
        formatter.kernelFields = KernelInfo.tcpInfoFields
        self.formatter = formatter
        self.export = export
        diagnoses = diagnose ? DiagnosedOutput() : nil
        self.report = report
    }

    func deliver(_ batch: [SocketNotification], ruleNames: RuleNameBook) {
        report?.record(batch)
        output.write(batch.compactMap { notification in
            var formatter = formatter
            let names = ruleNames.names(generation: notification.ruleGeneration)
            formatter.ruleNames = names
            guard let diagnoses else {
                if export.needsDelivery { export.delivered(notification, formatter: formatter, diagnosis: nil) }
                return formatter.line(for: notification)
            }
            guard let shown = diagnoses.visible(notification, samplingRule: names.count - 1) else { return nil }
            let diagnosis = diagnoses.tracker.diagnosis(cookie: shown.cookie)
            if export.needsDelivery { export.delivered(shown, formatter: formatter, diagnosis: diagnosis) }
            return formatter.line(for: shown, diagnosis: diagnosis)
        })
    }

    func tick(nowMonotonicNanoseconds now: UInt64) { report?.tick(nowMonotonicNanoseconds: now) }

    /// The last line: the totals (with the poll counters when polling).
    func finish(_ final: SourceStatistics) {
        output.write([formatter.line(for: final.statistics, polling: final.polling)])
    }
}

/// `watch --diagnose`: every record feeds the verdicts; a record is printed when a user rule fired, or at
/// close for a flow that was printed before. The sampling rule itself never shows.
final class DiagnosedOutput: Sendable {
    let tracker = DiagnosisTracker()
    private let printedFlows = Mutex<Set<UInt64>>([])

    func visible(_ notification: SocketNotification, samplingRule: Int) -> SocketNotification? {
        tracker.record(notification)
        var shown = notification
        if samplingRule >= 0 && samplingRule < 32 { shown.rulesFired &= ~(UInt32(1) << UInt32(samplingRule)) }
        let show = printedFlows.withLock { flows -> Bool in
            if notification.trigger == .close { return flows.remove(notification.cookie) != nil || shown.rulesFired != 0 }
            if shown.rulesFired == 0 { return false }
            flows.insert(notification.cookie)
            return true
        }
        return show ? shown : nil
    }
}
