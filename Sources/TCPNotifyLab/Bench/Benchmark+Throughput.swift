import Foundation
import Glibc

/// Notification throughput: a rule that notifies at (nearly) every RTT callback of many bulk flows;
/// notifications per second delivered as JSON lines to the bench (the sink reads the watcher's stdout pipe
/// and counts lines), with the kernel's and user space's drop counts.
extension Benchmark {
    /// The highest-rate rule the language allows: `every` has millisecond resolution and `every 0` means
    /// "not set" (edge), so a flow notifies at most once per millisecond, not at every callback.
    static let throughputRule = "all=bytes_acked > 0 every 1ms"

    func runThroughput(progress: (String) -> Void) throws {
        let flows = settings.throughputFlows
        progress("   \(flows) flows, \(BenchFormat.number(settings.throughputSeconds)) s")
        let server = try startIperfServer(port: Self.throughputPort)
        defer { server.stop(signal: SIGTERM) }
        let watcher = try startWatcher(filter: "dport = :\(Self.throughputPort)", rules: [Self.throughputRule], extra: newConnectionsOnly)
        let linesBefore = watcher.notificationCount
        let cpuBefore = watcher.cpuNanoseconds(), bpfBefore = BPFRunStatistics.of(pid: watcher.pid)
        let started = BenchClock.monotonicNanoseconds()
        let client = try BenchProcess(
            ["iperf3", "-c", "127.0.0.1", "-p", "\(Self.throughputPort)", "-t", String(format: "%.0f", settings.throughputSeconds),
             "-P", "\(flows)", "-J"],
            cgroup: environment.childrenCgroup)
        let exit = client.wait(timeoutSeconds: settings.throughputSeconds + 30)
        let elapsedSeconds = Double(BenchClock.monotonicNanoseconds() - started) / 1e9
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
        let rate = Double(linesInWindow) / elapsedSeconds
        let kernelNotifications = stats?["notifications"] ?? 0
        let ringDrops = stats?["ring_drops"] ?? 0, userDrops = stats?["user_drops"] ?? 0
        // Everything the rules fired = written (notifications) + ring_drops; written = read + user_drops.
        let unaccounted = Int64(kernelNotifications) - Int64(linesTotal) - Int64(userDrops)
        section.rows = [
            ["notification lines read per second", BenchFormat.number(rate)],
            ["lines read (whole run)", BenchFormat.number(Double(linesTotal))],
            ["kernel notifications written", BenchFormat.number(Double(kernelNotifications))],
            ["ring_drops (kernel, ring full)", BenchFormat.number(Double(ringDrops))],
            ["user_drops", BenchFormat.number(Double(userDrops))],
            ["unaccounted (written − read − user_drops)", "\(unaccounted)"],
            ["rule checks (events)", BenchFormat.number(Double(stats?["events"] ?? 0))],
            ["sock_ops callbacks in the window", BenchFormat.number(Double(sockOps.1))],
            ["sock_ops ns/callback (incl. emits)", sockOps.1 > 0 ? String(format: "%.0f", Double(sockOps.0) / Double(sockOps.1)) : "n/a"],
            ["tcpnotify CPU, % of a core", String(format: "%.0f", cpu / (elapsedSeconds * 1e9) * 100)],
            ["iperf3 throughput Gbit/s", report.map { String(format: "%.1f", $0.receivedBitsPerSecond / 1e9) } ?? "?"],
        ]
        section.figures = [
            "notifications_per_second": rate, "lines_read": Double(linesTotal), "kernel_notifications": Double(kernelNotifications),
            "ring_drops": Double(ringDrops), "user_drops": Double(userDrops), "unaccounted": Double(unaccounted),
        ]
        section.notes.append("The rule language cannot notify at every callback: `every` counts whole milliseconds and "
            + "`every 0` means edge-triggered, so each flow notifies at most 1,000 times per second. The rate is bounded by "
            + "flows × 1,000/s and by how many RTT callbacks loopback produces on this machine, not by the ring or the sink.")
        sections.append(section)

        addTarget(BenchTarget(
            name: "notification throughput", target: "≥ 1,000,000/s, no unaccounted loss",
            measured: "\(BenchFormat.number(rate))/s, \(ringDrops) ring drops, \(unaccounted) unaccounted",
            met: rate >= 1_000_000 && unaccounted == 0,
            note: "rule `\(Self.throughputRule)` (no per-callback rule exists); \(flows) flows"))
    }
}
