import Foundation
import Glibc
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyLab
import Testing

extension KernelSuite {
    @Suite struct SweepScheduleKernel {
        /// An idle connection under `watch` with a `last_ack_recv` rule: started, its schedule stated, then
        /// the connection made (no ACK after the handshake) and its first notification awaited.
        struct IdleStall {
            let watch: CLIProcess
            let pair: ConnectedPair
            let connected: Date
            let cookie: UInt64
            /// The notification of the idle connection, once it came (nil after `timeout` without one).
            let line: Wire.Notification?

            init(cgroup: TestCgroup, rules: [String], schedule: String, beforeReport: (CLIProcess) -> Void = { _ in }) throws {
                let listener = try TCPSocket.listener()
                let port = try listener.localPort()
                let process = try CLIProcess(
                    builtProduct("tcpnotify", environmentOverride: "TCPNOTIFY_BIN"),
                    ["watch", "--mode", "bpf", "--cgroup", cgroup.path, "--format", "json"]
                        + rules.flatMap { ["--when", $0] } + ["dport = :\(port)"])
                #expect(eventually(timeout: commandStartSeconds) { process.standardError.contains("watching cgroup") }, "\(process.standardError)")
                #expect(eventually(timeout: 5) { process.standardError.contains("sweep: \(schedule)") },
                        "the schedule is stated: \(process.standardError)")
                let pair = try ConnectedPair.connect(to: listener)
                let connected = Date()
                let cookie = try pair.client.cookie()
                beforeReport(process)
                let found = eventually(timeout: 6) { process.notifications.contains { $0.cookie == cookie } }
                #expect(found, "\(process.outputLines.map(\.text)) \(process.standardError)")
                (watch, self.pair, self.connected, self.cookie) = (process, pair, connected, cookie)
                line = process.notifications.first { $0.cookie == cookie }
            }

            /// Reported by a sweep, with last_ack_recv past `thresholdMs` by at most one tick plus 50 ms for a
            /// loaded machine's wake-up; the last_ack_recv it reported.
            @discardableResult
            func expectSweepReport(thresholdMs: Int, tickMs: Int) -> Int {
                let lastAck = line?.tcpInfo["last_ack_recv"].map(Int.init) ?? -1
                #expect(line?.trigger == .sweep, "\(String(describing: line))")
                #expect(lastAck > thresholdMs && lastAck <= thresholdMs + tickMs + 50,
                        "reported \(lastAck) ms after the last ACK (rule \(thresholdMs) ms, tick \(tickMs) ms)")
                return lastAck
            }
        }

        /// `watch` derives the sweep from the rules: `last_ack_recv > 2s` at the default 5 % precision
        /// is swept every 100 ms, so an idle connection (no ACK after the handshake) is reported with
        /// last_ack_recv within 2 s + 5 % (plus 50 ms for a loaded machine's wake-up). The old fixed 1 s
        /// sweep could report it up to 1 s late. About 4 s.
        @Test(.enabled(if: KernelGate.canRun))
        func twoSecondStallFiresWithinItsPrecision() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "sweep-schedule")
            defer { cgroup.restore() }
            let stall = try IdleStall(cgroup: cgroup, rules: ["quiet=last_ack_recv > 2s"],
                                      schedule: "every 100ms (last_ack_recv > 2s × 5 %)")
            stall.expectSweepReport(thresholdMs: 2000, tickMs: 100)
            stall.watch.signal(SIGINT)
            #expect(stall.watch.waitForExit() == 0)
        }

        /// The sweep horizon: with `last_ack_recv > 3s` the schedule ticks every 150 ms, but an idle
        /// connection cannot reach 3 s of silence before its last ACK plus 3 s, so the ticks before that
        /// skip the sweep; the rule still fires within the precision. Without the horizon the same run
        /// sweeps at every tick (~25). About 5 s.
        @Test(.enabled(if: KernelGate.canRun))
        func ticksBeforeTheHorizonSkipTheSweep() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "sweep-horizon")
            defer { cgroup.restore() }
            let stall = try IdleStall(
                cgroup: cgroup, rules: ["quiet=last_ack_recv > 3s", "slow=rtt > 1s"], schedule: "every 150ms",
                beforeReport: { watch in
                    #expect(eventually(timeout: 3) { watch.standardError.contains("sweep: next after") }, "\(watch.standardError)")
                })
            let seconds = Date().timeIntervalSince(stall.connected)
            let lastAck = stall.expectSweepReport(thresholdMs: 3000, tickMs: 150)
            let watch = stall.watch
            watch.signal(SIGINT)
            #expect(watch.waitForExit() == 0)
            let stats = try #require(watch.finalStats)
            let skipped = stats.sweepsSkipped ?? 0
            // ~4 s of 150 ms ticks: about 26. Swept: the first (nothing or the new socket), one or two as the
            // socket nears 3 s, and the one that reports it.
            #expect(stats.sweeps <= 5, "sweeps \(stats.sweeps), skipped \(skipped): \(watch.standardError)")
            #expect(skipped >= 12, "sweeps \(stats.sweeps), skipped \(skipped): \(watch.standardError)")
            print("sweep horizon: last_ack_recv > 3s reported at \(lastAck) ms, \(String(format: "%.2f", seconds)) s after connecting; "
                + "\(stats.sweeps) sweeps, \(skipped) ticks skipped")
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
            // The one sweep is the first, 1 s after the start, that sets the sweep horizon (an hour away).
            #expect((stats?.sweeps ?? 99) <= 1, "no sweep but the first ran: \(String(describing: stats))")
            print("retransmits >= 3: notified at \(trigger ?? "?") after \(String(format: "%.2f", seconds)) s, retransmits \(retransmits)")
        }
    }
}
