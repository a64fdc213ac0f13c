import Foundation
import Glibc
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyRecordFlood
import TCPNotifyRuntime

/// The consumer's capacity alone: `record_flood.bpf.c` (bench-only, BPF_PROG_TEST_RUN) fills the
/// `PushSource`'s own ring buffer with copies of a real socket's record, far faster than the sweep can,
/// and the source's reader decodes them and delivers `[SocketNotification]` batches to a counting consumer.
/// The producer pauses while half the ring waits, so nothing is dropped: the figure is what the reader keeps up with.
extension Benchmark {
    static let floodRunRecords = 65_536

    func runRecordFlood(progress: (String) -> Void) throws {
        progress("   synthetic producer (record_flood), \(BenchFormat.number(settings.throughputSeconds)) s")
        // A real loopback connection gives the template its tcp_info, addresses and cookie.
        let port = Self.idleBasePort + 699
        let listener = try IdleConnections.listen(port: port)
        let client = try IdleConnections.connect(port: port)
        let server = accept(listener, nil, nil)
        defer { [listener, client, server].forEach { if $0 >= 0 { close($0) } } }
        let template = try RecordFlood.template(socket: client)
        let configuration = WatchConfiguration(
            filter: try FilterExpression.compile("dport == :1"), rules: try RuleExpression.compile([Self.recordPathRule]),
            ringBufferBytes: Self.recordPathRingBytes, wakeupWatermarkBytes: Self.recordPathWakeupWatermarkBytes,
            notifyOnClose: false)
        let source = try PushSource(configuration: configuration, verbose: false)
        let flood = try source.withProgram { try RecordFlood(sharingRingOf: $0, template: template) }
        let counter = RecordCounter()
        try source.startReading(deliver: { counter.deliver($0) }, measuresRunTime: false, events: { _ in })

        let pauseAboveBytes = UInt64(Self.recordPathRingBytes / 2)
        var written: UInt64 = 0, dropped: UInt64 = 0, wakeups: UInt64 = 0, pauses = 0
        let cpuBefore = Self.processCPUNanoseconds()
        let bpfBefore = BPFRunStatistics.of(pid: getpid()).totalRunTimeNanoseconds
        let started = MonotonicClock.nanoseconds()
        let deadline = started + UInt64(settings.throughputSeconds * 1e9)
        while MonotonicClock.nanoseconds() < deadline {
            let run = try flood.run(records: Self.floodRunRecords, pauseAboveBytes: pauseAboveBytes,
                                    wakeupWatermarkBytes: Self.recordPathWakeupWatermarkBytes)
            written += run.written
            dropped += run.dropped
            wakeups += run.wakeups
            if run.written < UInt64(Self.floodRunRecords) {
                pauses += 1
                usleep(50)  // the reader is behind: give it the core
            }
        }
        let producedSeconds = Double(MonotonicClock.nanoseconds() - started) / 1e9
        let bpf = Double(BPFRunStatistics.of(pid: getpid()).totalRunTimeNanoseconds &- bpfBefore)
        // Wait for the reader to catch up with what was written, then stop it (it drains the rest).
        let catchUpDeadline = MonotonicClock.nanoseconds() + 5_000_000_000
        while counter.records.load(ordering: .relaxed) < written, MonotonicClock.nanoseconds() < catchUpDeadline {
            usleep(200)
        }
        let elapsedSeconds = Double(MonotonicClock.nanoseconds() - started) / 1e9
        let cpu = Double(Self.processCPUNanoseconds() - cpuBefore)
        _ = source.stop()
        let (received, malformed) = source.readerCounts
        let delivered = counter.records.load(ordering: .relaxed)
        let account = DeliveryAccount(perSecond: Double(delivered) / elapsedSeconds, written: written,
                                      delivered: delivered, ringDrops: dropped, userDrops: malformed)
        let batches = counter.batches.load(ordering: .relaxed)

        var section = BenchSection(
            title: "Records into the Swift API, synthetic producer: `record_flood` copies one real record into the "
                + "`PushSource`'s ring as fast as the kernel can; in-process consumer",
            columns: ["figure", "value"])
        section.rows = account.rows(rateLabel: "records delivered per second",
                                    consumedLabel: "records delivered (batches of [SocketNotification])",
                                    writtenLabel: "records written (producer)") + [
            ["records read by the reader", BenchFormat.number(Double(received))],
            ["batches", BenchFormat.number(Double(batches))],
            ["records per batch (mean, largest)",
             "\(batches > 0 ? delivered / batches : 0), \(counter.largestBatch.load(ordering: .relaxed))"],
            ["forced wakeups (producer)", BenchFormat.number(Double(wakeups))],
            ["producer pauses (half the ring waiting)", BenchFormat.number(Double(pauses))],
            ["producer BPF ns per record", written > 0 ? String(format: "%.0f", bpf / Double(written)) : "n/a"],
            ["process CPU (producer + reader), % of a core", String(format: "%.0f", cpu / (elapsedSeconds * 1e9) * 100)],
            ["producing time, s", String(format: "%.2f", producedSeconds)],
        ]
        section.figures = account.figures(.init(
            perSecond: "flood_records_per_second", delivered: "flood_records_delivered", written: "flood_records_written",
            ringDrops: "flood_ring_drops", userDrops: "flood_user_drops", unaccounted: "flood_unaccounted"))
        section.notes.append("Settings: ring \(Self.recordPathRingBytes >> 20) MiB, wakeup watermark "
            + "\(Self.recordPathWakeupWatermarkBytes >> 10) KiB (and a wakeup at the end of each producer run of "
            + "\(Self.floodRunRecords) records); the producer pauses 50 µs whenever half the ring waits. The reader "
            + "consumes the whole ring per wakeup and delivers it in batches of at most \(RingBufferReader.maximumBatchRecords) records.")
        sections.append(section)
        measured["api_records_per_second_synthetic"] = account.perSecond
        addTarget(account.target(name: "records into the Swift API (synthetic producer)", goalPerSecond: 1_000_000,
                                 note: "record_flood fills the PushSource's ring; the reader's capacity alone"))
    }
}
