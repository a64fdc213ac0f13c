import Foundation
import Glibc
import TCPNotifyBPF
import TCPNotifyCore
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

        /// `retransmits` grows only at an RTO, where sock_ops checks the rules: `watch` derives no sweep
        /// for `retransmits >= 3` and says why, and a peer that stops answering (every packet dropped by
        /// cls_bpf) is reported at its third RTO (since 6.7 the retransmit callback of that RTO already
        /// sees 3; before, the fourth RTO's callback does), with no sweep run. RTOs on the lab's 40 ms path
        /// come at about 0.24, 0.72 and 1.7 s (and 3.6 s): about 5 s.
        @Test(.enabled(if: KernelGate.canRun))
        func retransmitRuleFiresAtTheRTOWithoutASweep() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "sweep-rto")
            defer { cgroup.restore() }
            let lab = try NetworkLab()
            defer { lab.shutdown() }
            let connection = try LabConnection(across: lab)
            let port = try connection.listener.localPort()
            let watch = try CLIProcess(
                builtProduct("tcpnotify", environmentOverride: "TCPNOTIFY_BIN"),
                ["watch", "--mode", "bpf", "--cgroup", cgroup.path, "--format", "json",
                 "--when", "rto3=retransmits >= 3", "--when", "stall=last_ack_recv > 1h", "dport = :\(port)"])
            #expect(eventually(timeout: commandStartSeconds) { watch.standardError.contains("enrolled 1 existing socket(s)") },
                    "\(watch.standardError)")
            #expect(eventually(timeout: 5) {
                watch.standardError.contains("sweep: every 3m (last_ack_recv > 1h × 5 %; retransmits checked at TCP's RTO and retransmit callbacks)")
            }, "the schedule leaves retransmits to the RTO: \(watch.standardError)")
            try transfer(64 << 10, from: connection.client, to: connection.server)
            try lab.setLoss(.deadPath, toward: .server)
            defer { try? lab.clearLoss(toward: .server) }
            let start = Date()
            _ = connection.client.fillWithoutBlocking()
            let cookie = try connection.client.cookie()
            func fired() -> Wire.Notification? { watch.lines(of: Wire.Notification.self).first { $0.cookie == cookie } }
            #expect(eventually(timeout: 8) { fired() != nil }, "\(watch.outputLines.map(\.text)) \(watch.standardError)")
            let seconds = Date().timeIntervalSince(start)
            let line = fired()
            let trigger = line.map { $0.trigger.description }
            let retransmits = line.map { Int($0.tcpInfo.info[.retransmits]) } ?? -1
            #expect(trigger == "retrans" || trigger == "rto", "found at a TCP event: \(String(describing: line))")
            if KernelInfo.isOlder(than: "6.7") {
                #expect(retransmits >= 3, "retransmits \(retransmits)")
            } else {
                #expect(trigger == "retrans" && retransmits == 3, "at the third RTO's retransmission: \(trigger ?? "none"), \(retransmits)")
            }
            watch.signal(SIGINT)
            #expect(watch.waitForExit() == 0)
            let stats = watch.finalStats
            #expect(stats?.sweeps == 0, "no sweep ran: \(String(describing: stats))")
            print("retransmits >= 3: notified at \(trigger ?? "?") after \(String(format: "%.2f", seconds)) s, retransmits \(retransmits)")
        }
    }
}
