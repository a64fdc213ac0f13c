import Foundation
import Glibc
import TCPNotifyLab
import Testing

extension KernelSuite {
    @Suite struct SweepScheduleKernel {
        /// `watch` derives the sweep from the rules: `last_ack_recv > 2s` at the default 5 % precision
        /// is swept every 100 ms, so an idle connection (no ACK after the handshake) is reported with
        /// last_ack_recv within 2 s + 5 % (plus 50 ms for a loaded machine's wake-up). The old fixed 1 s
        /// sweep could report it up to 1 s late. About 4 s.
        @Test(.enabled(if: KernelGate.canRun))
        func twoSecondStallFiresWithinItsPrecision() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "sweep-schedule")
            defer { cgroup.restore() }
            let listener = try TCPSocket.listener()
            let port = try listener.localPort()
            let watch = try CLIProcess(
                builtProduct("tcpnotify", environmentOverride: "TCPNOTIFY_BIN"),
                ["watch", "--mode", "bpf", "--cgroup", cgroup.path, "--format", "json",
                 "--when", "quiet=last_ack_recv > 2s", "dport = :\(port)"])
            #expect(eventually(timeout: commandStartSeconds) { watch.standardError.contains("watching cgroup") }, "\(watch.standardError)")
            #expect(eventually(timeout: 5) { watch.standardError.contains("sweep: every 100ms (last_ack_recv > 2s × 5 %)") },
                    "the schedule is stated: \(watch.standardError)")
            let pair = try ConnectedPair.connect(to: listener)
            let cookie = try pair.client.cookie()
            let found = eventually(timeout: 6) {
                watch.notifications.contains { $0.cookie == cookie }
            }
            #expect(found, "\(watch.outputLines.map(\.text)) \(watch.standardError)")
            let line = watch.notifications.first { $0.cookie == cookie }
            let lastAck = line?.tcpInfo["last_ack_recv"].map(Int.init) ?? -1
            #expect(line?.trigger == .sweep, "\(String(describing: line))")
            #expect(lastAck > 2000 && lastAck <= 2000 + 100 + 50, "reported \(lastAck) ms after the last ACK (rule 2 s, 5 %)")
            watch.signal(SIGINT)
            #expect(watch.waitForExit() == 0)
        }
    }
}
