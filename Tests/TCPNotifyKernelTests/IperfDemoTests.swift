import Foundation
import Glibc
import TCPNotifyCore
import TCPNotifyLab
import Testing

extension KernelSuite {
    /// The original proposal's demo: iperf3 across a path with ~2 % random loss; tcpnotify, selecting the
    /// iperf data connection with `--when 'total_retrans > 16'`, notifies for that connection only, with
    /// the kernel's total_retrans at that moment (>= 17).
    @Suite struct IperfDemo {
        @Test(.enabled(if: KernelGate.canRun(needing: ["iperf3"])))
        func notifiesOnceRetransmitsPassSixteen() throws {
            try KernelGate.require(needing: ["iperf3"])
            let lab = try NetworkLab(lossPercent: 2)
            defer { lab.shutdown() }
            let cgroup = try TestCgroup(name: "iperf-demo")
            defer { cgroup.restore() }

            let dataPort = 40001
            let watch = try CLIProcess(
                KernelSuite.CLI.tcpnotify(),
                ["watch", "--cgroup", cgroup.path, "--format", "json", "--when", "total_retrans > 16",
                 "dst 10.77.2.1 and dport = :5201 and sport = :\(dataPort)"])
            #expect(eventually(timeout: commandStartSeconds) { watch.standardError.contains("watching") }, "\(watch.standardError)")

            let server = try lab.spawn(in: .server, ["iperf3", "-s", "-1", "-p", "5201"])
            defer { _ = server.terminate() }
            usleep(300_000)
            let client = try lab.run(
                in: .client, ["iperf3", "-c", "10.77.2.1", "-p", "5201", "--cport", String(dataPort), "-t", "4", "-J"])
            #expect(client.status == 0, "iperf3 failed: \(client.stderr)")

            _ = eventually(timeout: 5) { !watch.notifications.isEmpty }
            watch.signal(SIGINT)
            #expect(watch.waitForExit() == 0)

            let notifications = watch.timedLines(of: Wire.Notification.self)
            let tripped = notifications.filter { $0.line.rules.contains("total_retrans > 16") }
            #expect(tripped.count == 1, "one notification when the rule becomes true: \(notifications.map(\.line))")
            for notification in notifications {
                #expect(notification.line.src == "10.77.1.1:\(dataPort)", "only the data connection")
                #expect(notification.line.dst == "10.77.2.1:5201")
            }
            guard let first = tripped.first, let recordRetrans = first.line.tcpInfo["total_retrans"].map(Int.init) else {
                Issue.record("no total_retrans in \(tripped)")
                return
            }
            #expect(recordRetrans >= 17)
            // iperf3 reports the kernel's final tcpi_total_retrans for the data stream.
            let finalRetrans = (try? IperfReport(json: client.stdout))?.retransmits ?? -1
            #expect(finalRetrans >= recordRetrans, "the record cannot be ahead of the kernel's final count")
            // Edge trigger: the first crossing, within one retransmission's segments of the threshold.
            #expect(recordRetrans <= 16 + 64)
            let latencyMicros = (Int(first.monotonicNanoseconds) - Int(first.line.tsMonoNs)) / 1000
            print("iperf demo: total_retrans \(recordRetrans) in the record, \(finalRetrans) at the end; "
                + "kernel event to JSON line read by the test: \(latencyMicros) us")
            #expect(watch.lastLineType == Wire.Stats.lineType)
            #expect(watch.finalStats?.ringDrops == 0)
        }
    }
}

