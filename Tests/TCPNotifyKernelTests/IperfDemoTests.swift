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

            _ = eventually(timeout: 5) { !watch.jsonObjects.filter { $0.object["type"] as? String == "notification" }.isEmpty }
            watch.signal(SIGINT)
            #expect(watch.waitForExit() == 0)

            let notifications = watch.jsonObjects.filter { $0.object["type"] as? String == "notification" }
            let tripped = notifications.filter { ($0.object["rules"] as? [String])?.contains("total_retrans > 16") == true }
            #expect(tripped.count == 1, "one notification when the rule becomes true: \(notifications.map(\.object))")
            for notification in notifications {
                #expect(notification.object["src"] as? String == "10.77.1.1:\(dataPort)", "only the data connection")
                #expect(notification.object["dst"] as? String == "10.77.2.1:5201")
            }
            guard let first = tripped.first, let info = first.object["tcp_info"] as? [String: Any],
                  let recordRetrans = info["total_retrans"] as? Int else {
                Issue.record("no total_retrans in \(tripped)")
                return
            }
            #expect(recordRetrans >= 17)
            // iperf3 reports the kernel's final tcpi_total_retrans for the data stream.
            let report = try JSONSerialization.jsonObject(with: Data(client.stdout.utf8)) as? [String: Any]
            let sent = (report?["end"] as? [String: Any])?["sum_sent"] as? [String: Any]
            let finalRetrans = sent?["retransmits"] as? Int ?? -1
            #expect(finalRetrans >= recordRetrans, "the record cannot be ahead of the kernel's final count")
            // Edge trigger: the first crossing, within one retransmission's segments of the threshold.
            #expect(recordRetrans <= 16 + 64)
            if let monotonic = first.object["ts_mono_ns"] as? Int {
                let latencyMicros = (Int(first.monotonicNanoseconds) - monotonic) / 1000
                print("iperf demo: total_retrans \(recordRetrans) in the record, \(finalRetrans) at the end; "
                    + "kernel event to JSON line read by the test: \(latencyMicros) us")
            }
            let stats = watch.jsonObjects.last?.object
            #expect(stats?["type"] as? String == "stats")
            #expect(stats?["ring_drops"] as? Int == 0)
        }
    }
}
