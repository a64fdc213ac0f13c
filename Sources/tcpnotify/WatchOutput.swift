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

    /// `fields`: `--fields`, the tcp_info fields lines carry (nil: all the kernel reports).
    init(output: LineOutput, format: NotificationFormatter.Format, ruleNames: [String], export: WatchExport, diagnose: Bool,
         fields: TCPInfoFieldSet? = nil, report: ReportRecorder? = nil) {
        self.output = output
        var formatter = NotificationFormatter(
            format: format, ruleNames: ruleNames, realtimeOffsetNanoseconds: Clocks.realtimeOffsetNanoseconds())
        formatter.cgroupAttribution = export.cgroupPaths?.resolver
        formatter.kernelFields = fields.map { KernelInfo.tcpInfoFields.intersection($0) } ?? KernelInfo.tcpInfoFields
        self.formatter = formatter
        self.export = export
        diagnoses = diagnose ? DiagnosedOutput() : nil
        self.report = report
    }

    /// Lines are written once this many bytes are buffered: one write(2) per batch of short lines, and no
    /// buffer of a size glibc's malloc would keep (see `RingBufferReader.maximumBatchRecords`).
    static let flushBytes = 256 << 10

    /// The batch's lines from one byte buffer, one write(2) per `flushBytes`; rule names looked up once per
    /// generation.
    func deliver(_ batch: [SocketNotification], ruleNames: RuleNameBook) {
        report?.record(batch)
        var formatter = formatter
        var generation: UInt32?
        var buffer: [UInt8] = []
        buffer.reserveCapacity(min(batch.count * (formatter.format == .json ? 1024 : 256), Self.flushBytes + 4096))
        for notification in batch {
            if notification.ruleGeneration != generation {
                generation = notification.ruleGeneration
                formatter.ruleNames = ruleNames.names(generation: notification.ruleGeneration)
            }
            var shown = notification
            var diagnosis: Diagnosis?
            if let diagnoses {
                guard let visible = diagnoses.visible(notification, samplingRule: formatter.ruleNames.count - 1) else { continue }
                shown = visible
                diagnosis = diagnoses.tracker.diagnosis(cookie: shown.cookie)
            }
            if export.needsDelivery { export.delivered(shown, formatter: formatter, diagnosis: diagnosis) }
            switch formatter.format {
            case .json:
                formatter.appendJSONLine(for: shown, diagnosis: diagnosis, to: &buffer)
            case .text:
                buffer.append(contentsOf: formatter.line(for: shown, diagnosis: diagnosis).utf8)
                buffer.append(UInt8(ascii: "\n"))
            }
            if buffer.count >= Self.flushBytes {
                output.write(lineBytes: buffer)
                buffer.removeAll(keepingCapacity: true)
            }
        }
        output.write(lineBytes: buffer)
    }

    func tick(nowMonotonicNanoseconds now: UInt64) { report?.tick(nowMonotonicNanoseconds: now) }

    /// The last line: the totals (with the poll counters when polling).
    func finish(_ final: SourceStatistics) {
        output.write([formatter.line(for: final.statistics, polling: final.polling)])
        if let evicted = diagnoses?.tracker.evictedFlowCount, evicted > 0 {
            StandardError.write("tcpnotify: --diagnose forgot \(evicted) open flow(s): more than \(diagnoses?.tracker.maximumFlows ?? 0) at once (their verdicts restarted from their next record)\n")
        }
    }
}

/// `watch --diagnose`: every record feeds the verdicts; a record is printed when a user rule fired, or at
/// close for a flow that was printed before. The sampling rule itself never shows.
final class DiagnosedOutput: Sendable {
    let tracker: DiagnosisTracker
    /// Flows printed and not closed yet. A close record lost to a ring drop would keep its cookie here
    /// for good, so at `2 × tracker.maximumFlows` cookies those the tracker no longer holds (it evicted
    /// them: `tracker.evictedFlowCount`) are forgotten: at most twice the tracker's flows (65,536 by default).
    private let printedFlows = Mutex<Set<UInt64>>([])

    init(tracker: DiagnosisTracker = DiagnosisTracker()) { self.tracker = tracker }

    var printedFlowCount: Int { printedFlows.withLock { $0.count } }

    func visible(_ notification: SocketNotification, samplingRule: Int) -> SocketNotification? {
        tracker.record(notification)
        var shown = notification
        if samplingRule >= 0 && samplingRule < 32 { shown.rulesFired &= ~(UInt32(1) << UInt32(samplingRule)) }
        let show = printedFlows.withLock { flows -> Bool in
            if notification.trigger == .close { return flows.remove(notification.cookie) != nil || shown.rulesFired != 0 }
            if shown.rulesFired == 0 { return false }
            flows.insert(notification.cookie)
            if flows.count >= 2 * tracker.maximumFlows { flows = flows.filter { tracker.holds(cookie: $0) } }
            return true
        }
        return show ? shown : nil
    }
}
