import Foundation
import TCPNotifyLab
import Glibc

/// Data-path overhead: loopback iperf3 throughput unmonitored versus with every socket enrolled and a rule
/// that never fires, and the sock_ops program's kernel cost per callback (Δrun_time_ns / Δrun_cnt from the
/// kernel's BPF statistics). Also the per-rule-set callback cost of scripts/measure-callback-cost.
extension Benchmark {
    static let neverFiringRule = "rtt > 1h"

    /// The rule sets scripts/measure-callback-cost has always reported.
    static let callbackCostRuleSets: [(label: String, rules: [String])] = [
        ("1 rule (rtt > 1h)", [neverFiringRule]),
        ("the 4 built-in rules", []),
        ("8 rules incl. 2 windows, ratio, diff, for", [
            "total_retrans > 1000000", "retransmits >= 3", "rtt > 200ms", "rttvar > 50ms",
            "increase(total_retrans, 1s) > 100000", "rate(bytes_acked, 1s) > 100GBps", "retrans_rate > 90%",
            "queue_delay > 10s for 1s",
        ]),
    ]

    struct IperfRun {
        let bitsPerSecond: Double
        /// Sock_ops run time and count during the run (monitored runs only).
        var sockOpsNanoseconds: UInt64 = 0
        var sockOpsRuns: UInt64 = 0
        var nanosecondsPerCallback: Double? { sockOpsRuns > 0 ? Double(sockOpsNanoseconds) / Double(sockOpsRuns) : nil }
    }

    func runDataPath(progress: (String) -> Void) throws {
        var section = BenchSection(
            title: "Data path: loopback iperf3, \(BenchFormat.number(settings.dataPathSeconds)) s runs, unmonitored vs every socket enrolled",
            columns: ["run", "unmonitored Gbit/s", "monitored Gbit/s", "ratio", "callbacks", "ns/callback"])
        let server = try startIperfServer(port: Self.dataPathPort)
        defer { server.stop(signal: SIGTERM) }
        var ratios: [Double] = [], bare: [Double] = [], monitored: [Double] = []
        var totalNanoseconds: UInt64 = 0, totalRuns: UInt64 = 0
        var perRun: [Double] = []
        for run in 1...settings.dataPathRuns {
            progress("   run \(run)/\(settings.dataPathRuns)")
            // Alternate which goes first (ABBA) so a drift in the machine's speed cancels out.
            var unmonitoredRun: IperfRun, monitoredRun: IperfRun
            if run % 2 == 1 {
                unmonitoredRun = try iperfRun(port: Self.dataPathPort, seconds: settings.dataPathSeconds, rules: nil)
                monitoredRun = try iperfRun(port: Self.dataPathPort, seconds: settings.dataPathSeconds, rules: [Self.neverFiringRule])
            } else {
                monitoredRun = try iperfRun(port: Self.dataPathPort, seconds: settings.dataPathSeconds, rules: [Self.neverFiringRule])
                unmonitoredRun = try iperfRun(port: Self.dataPathPort, seconds: settings.dataPathSeconds, rules: nil)
            }
            let ratio = monitoredRun.bitsPerSecond / unmonitoredRun.bitsPerSecond
            ratios.append(ratio)
            bare.append(unmonitoredRun.bitsPerSecond)
            monitored.append(monitoredRun.bitsPerSecond)
            totalNanoseconds += monitoredRun.sockOpsNanoseconds
            totalRuns += monitoredRun.sockOpsRuns
            if let cost = monitoredRun.nanosecondsPerCallback { perRun.append(cost) }
            section.rows.append([
                "\(run)", String(format: "%.2f", unmonitoredRun.bitsPerSecond / 1e9), String(format: "%.2f", monitoredRun.bitsPerSecond / 1e9),
                String(format: "%.1f %%", ratio * 100), BenchFormat.number(Double(monitoredRun.sockOpsRuns)),
                monitoredRun.nanosecondsPerCallback.map { String(format: "%.0f", $0) } ?? "n/a",
            ])
        }
        let medianRatio = ratios.median ?? .nan
        let overall = totalRuns > 0 ? Double(totalNanoseconds) / Double(totalRuns) : Double.nan
        section.rows.append([
            "median", String(format: "%.2f", (bare.median ?? 0) / 1e9), String(format: "%.2f", (monitored.median ?? 0) / 1e9),
            String(format: "%.1f %%", medianRatio * 100), BenchFormat.number(Double(totalRuns)),
            String(format: "%.0f (all runs: %.0f)", perRun.median ?? .nan, overall),
        ])
        section.figures["datapath_ratio_median"] = medianRatio
        section.figures["datapath_unmonitored_bps_median"] = bare.median ?? .nan
        section.figures["datapath_monitored_bps_median"] = monitored.median ?? .nan
        section.figures["callback_ns_median"] = perRun.median ?? .nan
        section.notes.append("Monitored: `tcpnotify watch --when '\(Self.neverFiringRule)'` with no filter (every new "
            + "socket in the bench cgroup enrolled). ns/callback = Δrun_time_ns / Δrun_cnt of the sock_ops program "
            + "(kernel.bpf_stats_enabled=1; about 20-40 ns of it is the statistics' own accounting). Ratio: median of the "
            + "per-round ratios.")
        sections.append(section)

        addTarget(BenchTarget(
            name: "bulk throughput, everything enrolled", target: "≥ 98 % of unmonitored",
            measured: String(format: "%.1f %%", medianRatio * 100), met: medianRatio.isNaN ? nil : medianRatio >= 0.98,
            note: String(format: "median of %d alternating runs; per-run %@", ratios.count,
                         ratios.map { String(format: "%.1f", $0 * 100) }.joined(separator: ", "))))
        let cost = perRun.median ?? .nan
        addTarget(BenchTarget(
            name: "ns per callback, rules false", target: "< 300 ns", measured: String(format: "%.0f ns", cost),
            met: cost.isNaN ? nil : cost < 300,
            note: String(format: "median of runs %@", perRun.map { String(format: "%.0f", $0) }.joined(separator: ", "))))
    }

    /// The callback cost of each rule set (what scripts/measure-callback-cost prints).
    func runCallbackCost(progress: (String) -> Void) throws {
        var section = BenchSection(
            title: "ns per sock_ops callback on monitored sockets whose rules stay false (loopback iperf3, 3 s runs)",
            columns: ["rules", "ns/callback median", "runs"])
        let server = try startIperfServer(port: Self.dataPathPort)
        defer { server.stop(signal: SIGTERM) }
        for (label, rules) in Self.callbackCostRuleSets {
            progress("   \(label)")
            var costs: [Double] = []
            for _ in 0..<settings.callbackCostRuns {
                if let cost = try iperfRun(port: Self.dataPathPort, seconds: 3, rules: rules).nanosecondsPerCallback { costs.append(cost) }
            }
            section.rows.append([label, costs.median.map { String(format: "%.0f", $0) } ?? "n/a",
                                 costs.map { String(format: "%.0f", $0) }.joined(separator: ", ")])
            section.figures["callback_ns_\(label)"] = costs.median ?? .nan
        }
        sections.append(section)
    }

    func startIperfServer(port: UInt16) throws -> BenchProcess {
        let server = try BenchProcess(["iperf3", "-s", "-p", "\(port)"], cgroup: environment.childrenCgroup)
        BenchClock.sleep(seconds: 0.3)
        guard server.isRunning else {
            throw LabError.commandFailed(command: server.command, status: server.stop().status, stderr: server.stderr)
        }
        return server
    }

    /// One `iperf3 -c` run in the bench cgroup; with `rules`, under a watcher with no filter.
    func iperfRun(port: UInt16, seconds: Double, rules: [String]?, parallel: Int = 1) throws -> IperfRun {
        var watcher: BenchProcess?
        if let rules {
            watcher = try startWatcher(filter: nil, rules: rules, extra: newConnectionsOnly)
        }
        defer { if let watcher { _ = stopWatcher(watcher) } }
        let before = watcher.map { BPFRunStatistics.of(pid: $0.pid).sockOps }
        let client = try BenchProcess(
            ["iperf3", "-c", "127.0.0.1", "-p", "\(port)", "-t", String(format: "%.0f", seconds), "-P", "\(parallel)", "-J"],
            cgroup: environment.childrenCgroup)
        let exit = client.wait(timeoutSeconds: seconds + 20)
        let after = watcher.map { BPFRunStatistics.of(pid: $0.pid).sockOps }
        let report = try IperfReport(json: client.otherStdoutLines.joined(separator: "\n"))
        if exit.status != 0 { throw LabError.commandFailed(command: client.command, status: exit.status, stderr: client.stderr) }
        var run = IperfRun(bitsPerSecond: report.receivedBitsPerSecond)
        if let before, let after {
            run.sockOpsNanoseconds = after.runTimeNanoseconds &- before.runTimeNanoseconds
            run.sockOpsRuns = after.runCount &- before.runCount
        }
        return run
    }
}
