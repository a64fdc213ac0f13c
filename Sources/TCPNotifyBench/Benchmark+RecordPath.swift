import Foundation
import Glibc
import Synchronization
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyRuntime

/// Records per second into the Swift API: a `PushSource` in this process hands the decoded records of
/// each ring-buffer poll (`[SocketNotification]`) to a consumer that only counts them: no JSON, no pipe.
/// The load is the in-kernel sweep with an `each` rule over the largest size of idle sockets, swept back
/// to back on this thread while the ring reader runs on its own.
extension Benchmark {
    /// True on every idle socket, and it reads a silence field, so the rules need the sweep.
    static let recordPathRule = "all=last_ack_recv >= 0 each"
    /// A whole sweep of 50,000 records (384 bytes each in the ring) fits with room to spare.
    static let recordPathRingBytes = 64 << 20
    /// Wake the reader once 1 MiB is waiting, else at most every 200 µs (the product's interval).
    static let recordPathWakeupWatermarkBytes: UInt64 = 1 << 20

    /// Counts what the reader delivers; the closure runs on the reader's thread.
    final class RecordCounter: Sendable {
        let records = Atomic<UInt64>(0)
        let batches = Atomic<UInt64>(0)
        let largestBatch = Atomic<UInt64>(0)

        func deliver(_ batch: [SocketNotification]) {
            records.add(UInt64(batch.count), ordering: .relaxed)
            batches.add(1, ordering: .relaxed)
            if UInt64(batch.count) > largestBatch.load(ordering: .relaxed) {
                largestBatch.store(UInt64(batch.count), ordering: .relaxed)
            }
        }
    }

    func runRecordPath(progress: (String) -> Void) throws {
        try runRecordFlood(progress: progress)
        let size = settings.sizes.max() ?? 10_000
        let basePort = Self.idleBasePort + 700
        progress("   \(size) idle sockets, rule `\(Self.recordPathRule)`, \(BenchFormat.number(settings.throughputSeconds)) s")
        let helper = try holdIdleConnections(count: size, matched: size, basePort: basePort)
        defer { helper.stop() }
        let ports = IdleConnections.ports(count: size, matchedCount: size, basePort: basePort)
        let configuration = WatchConfiguration(
            filter: try FilterExpression.compile("dport >= :\(ports.lowerBound) and dport <= :\(ports.upperBound)"),
            rules: try RuleExpression.compile([Self.recordPathRule]), ringBufferBytes: Self.recordPathRingBytes,
            wakeupWatermarkBytes: Self.recordPathWakeupWatermarkBytes, notifyOnClose: false)
        var session = SessionSettings(inputs: SessionInputs(filter: configuration.filter, rules: configuration.rules))
        session.cgroupPath = environment.cgroupPath
        session.sweepIntervalMilliseconds = 1
        let source = try PushSource(configuration: configuration, verbose: false)
        let counter = RecordCounter()
        try source.start(settings: session, deliver: { counter.deliver($0) }, events: { _ in })

        let recordsBefore = counter.records.load(ordering: .relaxed)
        let cpuBefore = Self.processCPUNanoseconds()
        let bpfBefore = BPFRunStatistics.of(pid: getpid()).totalRunTimeNanoseconds
        let started = MonotonicClock.nanoseconds()
        let deadline = started + UInt64(settings.throughputSeconds * 1e9)
        var sweeps = 0
        while MonotonicClock.nanoseconds() < deadline {
            source.tick(events: { _ in })
            sweeps += 1
        }
        let elapsedSeconds = Double(MonotonicClock.nanoseconds() - started) / 1e9
        let recordsInWindow = counter.records.load(ordering: .relaxed) - recordsBefore
        let cpu = Double(Self.processCPUNanoseconds() - cpuBefore)
        let bpf = Double(BPFRunStatistics.of(pid: getpid()).totalRunTimeNanoseconds &- bpfBefore)
        let final = source.stop().statistics
        let delivered = counter.records.load(ordering: .relaxed)
        // Everything the rules fired = written (notifications) + ring_drops; written = delivered + malformed.
        let account = DeliveryAccount(perSecond: Double(recordsInWindow) / elapsedSeconds, written: final.notifications,
                                      delivered: delivered, ringDrops: final.ringDrops, userDrops: final.userDrops)
        let batches = counter.batches.load(ordering: .relaxed)

        var section = BenchSection(
            title: "Records into the Swift API: \(BenchFormat.number(Double(size))) idle sockets, rule `\(Self.recordPathRule)`, "
                + "sweeps back to back, in-process `PushSource` consumer",
            columns: ["figure", "value"])
        section.rows = account.rows(rateLabel: "records delivered per second", consumedLabel: "records delivered (whole run)",
                                    writtenLabel: "kernel records written") + [
            ["sweeps", "\(sweeps)"],
            ["batches (ring polls with records)", BenchFormat.number(Double(batches))],
            ["records per batch (mean, largest)",
             "\(batches > 0 ? delivered / batches : 0), \(counter.largestBatch.load(ordering: .relaxed))"],
            ["forced wakeups", BenchFormat.number(Double(final.wakeups))],
            ["process CPU (sweep + reader), % of a core", String(format: "%.0f", cpu / (elapsedSeconds * 1e9) * 100)],
            ["of which BPF run time (sweep), % of a core", String(format: "%.0f", bpf / (elapsedSeconds * 1e9) * 100)],
            ["BPF run time per record, ns", recordsInWindow > 0 ? String(format: "%.0f", bpf / Double(recordsInWindow)) : "n/a"],
        ]
        section.figures = account.figures(.init(
            perSecond: "api_records_per_second", delivered: "api_records_delivered", written: "api_kernel_records",
            ringDrops: "api_ring_drops", userDrops: "api_user_drops", unaccounted: "api_unaccounted"))
        section.notes.append("Settings: ring \(Self.recordPathRingBytes >> 20) MiB, wakeup watermark "
            + "\(Self.recordPathWakeupWatermarkBytes >> 10) KiB, wakeup interval 200 µs; the reader consumes the whole "
            + "ring per wakeup and delivers it in batches of at most \(RingBufferReader.maximumBatchRecords) records. The sweep runs on this thread, the reader on its own.")
        sections.append(section)
        measured["api_records_per_second"] = account.perSecond
        addTarget(account.target(name: "records into the Swift API", goalPerSecond: 1_000_000,
                                 note: "in-process PushSource, sweep with `each` over \(BenchFormat.number(Double(size))) idle sockets"))
    }

    static func processCPUNanoseconds() -> UInt64 {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        func nanoseconds(_ time: timeval) -> UInt64 { UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_usec) * 1000 }
        return nanoseconds(usage.ru_utime) + nanoseconds(usage.ru_stime)
    }
}
