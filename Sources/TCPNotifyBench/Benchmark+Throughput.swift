import Foundation
import Glibc
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyLab

/// Notification throughput: a rule that notifies at (nearly) every RTT callback of many bulk flows;
/// notifications per second delivered as JSON lines to the bench (the sink reads the watcher's stdout pipe
/// and counts lines), with the kernel's and user space's drop counts.
extension Benchmark {
    /// A record at every RTT/retransmit/RTO/state callback of the flows (`each`).
    static let throughputRule = "all=bytes_acked > 0 each"

    /// The sweep variant: every held idle socket selected, a time-based rule true on all of them, so each
    /// in-kernel sweep notifies for every socket (the highest rate the kernel side can produce here).
    static let sweepThroughputRule = "quiet=last_ack_recv > 1ms each"
    static let sweepThroughputInterval = "10ms"
    /// `--fields` for the second sweep run: what a per-event RTT stream needs.
    static let sweepThroughputFields = "state,rtt,rttvar,snd_cwnd,unacked,total_retrans,delivery_rate,bytes_acked"

    func runThroughput(progress: (String) -> Void) throws {
        try runRTTThroughput(progress: progress)
        if features.sweep && features.enrollsExisting {
            try runSweepThroughput(fields: nil, progress: progress)
            try runSweepThroughput(fields: Self.sweepThroughputFields, progress: progress)
        } else {
            sections[sections.count - 1].notes.append("Sweep variant skipped: this build has no periodic sweep over existing sockets.")
        }
    }

    private func runRTTThroughput(progress: (String) -> Void) throws {
        let flows = settings.throughputFlows
        progress("   \(flows) flows, \(BenchFormat.number(settings.throughputSeconds)) s")
        let server = try startIperfServer(port: Self.throughputPort)
        defer { server.stop(signal: SIGTERM) }
        let watcher = try startWatcher(filter: "dport = :\(Self.throughputPort)", rules: [Self.throughputRule], extra: newConnectionsOnly)
        let linesBefore = watcher.notificationCount
        let cpuBefore = watcher.cpuNanoseconds(), bpfBefore = BPFRunStatistics.of(pid: watcher.pid)
        let started = MonotonicClock.nanoseconds()
        let client = try BenchProcess(
            ["iperf3", "-c", "127.0.0.1", "-p", "\(Self.throughputPort)", "-t", String(format: "%.0f", settings.throughputSeconds),
             "-P", "\(flows)", "-J"],
            cgroup: environment.childrenCgroup)
        let exit = client.wait(timeoutSeconds: settings.throughputSeconds + 30)
        let elapsedSeconds = Double(MonotonicClock.nanoseconds() - started) / 1e9
        let linesInWindow = watcher.notificationCount - linesBefore
        let cpu = Double(watcher.cpuNanoseconds() &- cpuBefore)
        let bpf = BPFRunStatistics.of(pid: watcher.pid)
        let sockOps = (bpf.sockOps.runTimeNanoseconds &- bpfBefore.sockOps.runTimeNanoseconds,
                       bpf.sockOps.runCount &- bpfBefore.sockOps.runCount)
        BenchClock.sleep(seconds: 0.5) // let the reader drain the ring and the pipe before the stats line
        let stats = stopWatcher(watcher)
        let linesTotal = watcher.notificationCount
        if exit.status != 0 { throw LabError.commandFailed(command: client.command, status: exit.status, stderr: client.stderr) }
        let report = try? IperfReport(json: client.otherStdoutLines.joined(separator: "\n"))

        var section = BenchSection(
            title: "Notification throughput: \(flows) loopback flows, rule `\(Self.throughputRule)`",
            columns: ["figure", "value"])
        let account = Self.linesAccount(linesInWindow: linesInWindow, linesTotal: linesTotal,
                                        elapsedSeconds: elapsedSeconds, stats: stats)
        section.rows = Self.linesRows(account) + [
            ["rule checks (events)", BenchFormat.number(Double(stats?.events ?? 0))],
            ["sock_ops callbacks in the window", BenchFormat.number(Double(sockOps.1))],
            ["sock_ops ns/callback (incl. emits)", sockOps.1 > 0 ? String(format: "%.0f", Double(sockOps.0) / Double(sockOps.1)) : "n/a"],
            ["tcpnotify CPU, % of a core", String(format: "%.0f", cpu / (elapsedSeconds * 1e9) * 100)],
            ["iperf3 throughput Gbit/s", report.map { String(format: "%.1f", $0.receivedBitsPerSecond / 1e9) } ?? "?"],
        ]
        section.figures = account.figures(Self.linesFigureNames(prefix: ""))
        section.notes.append("`each` notifies at every rule check, so records = rule checks; the rate is bounded by how "
            + "many callbacks loopback bulk flows produce on this machine (a few per flow per ms).")
        sections.append(section)

        measured["throughput_rtt_per_second"] = account.perSecond
        addTarget(account.target(name: "notification throughput (RTT callbacks)", goalPerSecond: 1_000_000,
                                 note: "rule `\(Self.throughputRule)`; \(flows) flows"))
    }

    /// `fields`: `watch --fields`, nil for all 70.
    private func runSweepThroughput(fields: String?, progress: (String) -> Void) throws {
        let variant = fields == nil ? "" : "_fields"
        let size = settings.sizes.max() ?? 10_000
        let basePort = Self.idleBasePort + 500
        progress("   sweep variant: \(size) idle sockets, \(fields.map { "--fields " + $0 } ?? "all fields"), \(BenchFormat.number(settings.throughputSeconds)) s")
        let matched = max(1, size / 100)
        let helper = try holdIdleConnections(count: size, matched: matched, basePort: basePort)
        defer { helper.stop() }
        let ports = IdleConnections.ports(count: size, matchedCount: matched, basePort: basePort)
        let watcher = try startWatcher(
            filter: "dport >= :\(ports.lowerBound) and dport <= :\(ports.upperBound)", rules: [Self.sweepThroughputRule],
            extra: ["--sweep-interval", Self.sweepThroughputInterval, "--ring-bytes", String(Self.recordPathRingBytes)]
                + (fields.map { ["--fields", $0] } ?? []))
        BenchClock.sleep(seconds: 0.5)
        let linesBefore = watcher.notificationCount
        let cpuBefore = watcher.cpuNanoseconds(), bpfBefore = BPFRunStatistics.of(pid: watcher.pid)
        let started = MonotonicClock.nanoseconds()
        BenchClock.sleep(seconds: settings.throughputSeconds)
        let elapsedSeconds = Double(MonotonicClock.nanoseconds() - started) / 1e9
        let linesInWindow = watcher.notificationCount - linesBefore
        let cpu = Double(watcher.cpuNanoseconds() &- cpuBefore)
        let bpf = Double(BPFRunStatistics.of(pid: watcher.pid).totalRunTimeNanoseconds &- bpfBefore.totalRunTimeNanoseconds)
        let stats = stopWatcher(watcher)
        let linesTotal = watcher.notificationCount
        let account = Self.linesAccount(linesInWindow: linesInWindow, linesTotal: linesTotal,
                                        elapsedSeconds: elapsedSeconds, stats: stats)
        var section = BenchSection(
            title: "Notification throughput, sweep: \(BenchFormat.number(Double(size))) idle sockets selected, "
                + "rule `\(Self.sweepThroughputRule)`, --sweep-interval \(Self.sweepThroughputInterval)"
                + (fields.map { ", --fields \($0)" } ?? ", all 70 fields"),
            columns: ["figure", "value"])
        section.rows = Self.linesRows(account) + [
            ["tcpnotify CPU, % of a core", String(format: "%.0f", cpu / (elapsedSeconds * 1e9) * 100)],
            ["of which BPF run time (sweep), % of a core", String(format: "%.0f", bpf / (elapsedSeconds * 1e9) * 100)],
        ]
        section.figures = account.figures(Self.linesFigureNames(prefix: "sweep\(variant)_"))
        section.notes.append("Each sweep re-evaluates every enrolled socket (trigger `sweep`); `each` makes each "
            + "notify at every sweep. Drops are expected once the sink is slower than the sweep: they must be counted. "
            + "Ring \(Self.recordPathRingBytes >> 20) MiB (--ring-bytes): a whole sweep of \(BenchFormat.number(Double(size))) records fits.")
        sections.append(section)
        let goal = fields == nil ? 120_000.0 : 250_000.0
        addTarget(account.target(
            name: fields == nil ? "JSON lines, all 70 fields (sweep)" : "JSON lines with --fields (sweep)",
            goalPerSecond: goal,
            note: "\(BenchFormat.number(Double(size))) idle sockets, one line per socket per sweep; tcpnotify CPU "
                + String(format: "%.0f", cpu / (elapsedSeconds * 1e9) * 100) + " % of a core incl. the sweep"))
    }

    /// `watch`'s lines against the kernel's counters (its stats line): everything the rules fired is
    /// written (notifications) + ring_drops; written = lines read + user_drops.
    static func linesAccount(linesInWindow: UInt64, linesTotal: UInt64, elapsedSeconds: Double,
                             stats: Wire.Stats?) -> DeliveryAccount {
        var account = DeliveryAccount(perSecond: Double(linesInWindow) / elapsedSeconds, written: stats?.notifications ?? 0,
                                      delivered: linesTotal, ringDrops: stats?.ringDrops ?? 0, userDrops: stats?.userDrops ?? 0)
        account.consumerVerb = "read"
        return account
    }

    static func linesRows(_ account: DeliveryAccount) -> [[String]] {
        account.rows(rateLabel: "notification lines read per second", consumedLabel: "lines read (whole run)",
                     writtenLabel: "kernel notifications written")
    }

    static func linesFigureNames(prefix: String) -> DeliveryAccount.FigureNames {
        .init(perSecond: prefix + "notifications_per_second", delivered: prefix + "lines_read", written: prefix + "kernel_notifications",
              ringDrops: prefix + "ring_drops", userDrops: prefix + "user_drops", unaccounted: prefix + "unaccounted")
    }
}
