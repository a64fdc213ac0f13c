import Foundation
import Glibc
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyLab
import Testing

extension KernelSuite {
    @Suite struct Triggers {
        /// A rule notifies when it becomes true, stays quiet while it holds, and notifies again after it
        /// has been false: `always` holds at every event and must fire exactly once; `fin_or_close` is true
        /// in FIN_WAIT1, false in FIN_WAIT2 and true again at CLOSE, so it fires twice.
        @Test(.enabled(if: KernelGate.canRun))
        func edgeTriggerAndRearm() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "edge")
            defer { cgroup.restore() }
            let harness = try WatchHarness(
                cgroupPath: cgroup.path,
                rules: ["always=bytes_acked >= 0", "fin_or_close=state == FIN_WAIT1 or state == CLOSE"])
            let always = try #require(harness.ruleIndex("always"))
            let finOrClose = try #require(harness.ruleIndex("fin_or_close"))
            var pair: ConnectedPair? = try ConnectedPair.make()
            let cookie = try pair!.client.cookie()
            try transfer(4 << 20, from: pair!.client, to: pair!.server)
            try pair!.client.shutdownWrite()
            try pair!.server.shutdownWrite()
            _ = eventually { harness.notifications(cookie: cookie).contains { $0.trigger == .close } }
            pair = nil
            let mine = harness.notifications(cookie: cookie)
            let alwaysFirings = mine.filter { $0.rulesFired & (1 << UInt32(always)) != 0 }
            let finFirings = mine.filter { $0.rulesFired & (1 << UInt32(finOrClose)) != 0 }
            #expect(alwaysFirings.count == 1, "a rule that stays true notifies once (got \(alwaysFirings.count))")
            #expect(finFirings.count == 2, "re-armed after FIN_WAIT2: \(mine.map { "\($0.trigger)/\($0.info[.state])" })")
            #expect(finFirings.first?.info.state == .finWait1)
            #expect(finFirings.last?.trigger == .close)
            #expect(finFirings.last?.info.state == .close)
            let statistics = try harness.program.kernelStatistics()
            #expect(statistics.events > 3, "rules were checked at every event")
        }

        /// A socket that notified gets a final record at close even when no rule fires then; a socket that
        /// never notified gets none.
        @Test(.enabled(if: KernelGate.canRun))
        func finalRecordOnClose() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "close")
            defer { cgroup.restore() }
            let harness = try WatchHarness(cgroupPath: cgroup.path, rules: ["fin=state == FIN_WAIT1"])
            var pair: ConnectedPair? = try ConnectedPair.make()
            let clientCookie = try pair!.client.cookie()
            let serverCookie = try pair!.server.cookie()
            try transfer(64 << 10, from: pair!.client, to: pair!.server)
            try pair!.client.shutdownWrite()
            _ = eventually { !harness.notifications(cookie: clientCookie).isEmpty }
            try pair!.server.shutdownWrite()
            pair = nil
            let closeRecord = harness.waitFor { $0.cookie == clientCookie && $0.trigger == .close }
            #expect(closeRecord != nil, "final record for the socket that notified")
            #expect(closeRecord?.rulesFired == 0)
            #expect(closeRecord?.info.state == .close)
            #expect((closeRecord?.socketNotificationCount ?? 0) == 2)
            usleep(100_000)
            #expect(harness.notifications(cookie: serverCookie).isEmpty, "no record for a socket that never notified")
        }

        /// With a ring too small for the burst and nobody reading, the kernel counts every record it could
        /// not write; what it did write is all read back: nothing is lost without a count.
        @Test(.enabled(if: KernelGate.canRun))
        func ringDropsAreCounted() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "drops")
            defer { cgroup.restore() }
            let harness = try WatchHarness(
                cgroupPath: cgroup.path, rules: ["fin=state == FIN_WAIT1"], ringBufferBytes: 4096, startReader: false)
            var pairs: [ConnectedPair] = []
            for _ in 0..<60 { pairs.append(try ConnectedPair.make()) }
            for pair in pairs { try pair.client.shutdownWrite() }
            let statistics = try harness.program.kernelStatistics()
            #expect(statistics.ringDrops > 0)
            #expect(statistics.notifications + statistics.ringDrops == 60, "every firing is a record or a counted drop")
            harness.reader.drain()
            #expect(UInt64(harness.notifications.count) == statistics.notifications)
            #expect(harness.reader.receivedCount == statistics.notifications)
        }

        /// Rules replaced while attached take effect at once and re-arm every enrolled socket.
        @Test(.enabled(if: KernelGate.canRun))
        func rulesChangeWhileRunning() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "replace")
            defer { cgroup.restore() }
            let harness = try WatchHarness(cgroupPath: cgroup.path, rules: ["never=state == LISTEN"])
            let pair = try ConnectedPair.make()
            let cookie = try pair.client.cookie()
            try transfer(1 << 20, from: pair.client, to: pair.server)
            #expect(harness.notifications(cookie: cookie).isEmpty)
            try harness.program.replaceRules(RuleExpression.compile(["fin=state == FIN_WAIT1"]))
            try pair.client.shutdownWrite()
            let record = harness.waitFor { $0.cookie == cookie }
            #expect(record?.ruleGeneration == 2)
            #expect(record?.info.state == .finWait1)
        }
    }
}

extension KernelSuite {
    /// Another sock_ops program on the same cgroup keeps its callback flag: tcpnotify ORs its own bits in.
    @Suite struct Coexistence {
        @Test(.enabled(if: KernelGate.canRun))
        func foreignCallbackFlagsSurvive() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "coexist")
            defer { cgroup.restore() }
            let foreign = try ForeignSockOps(cgroupPath: cgroup.path) // attached first, runs first
            let harness = try WatchHarness(cgroupPath: cgroup.path, rules: ["fin=state == FIN_WAIT1"])
            let pair = try ConnectedPair.make()
            let cookie = try pair.client.cookie()
            try transfer(256 << 10, from: pair.client, to: pair.server)
            try pair.client.shutdownWrite()
            let record = try #require(harness.waitFor { $0.cookie == cookie })
            let ours: UInt32 = 0x1 | 0x2 | 0x4 | 0x8 // RTO, RETRANS, STATE, RTT
            #expect(record.callbackFlags & ForeignSockOps.flag != 0, "the other program's flag was cleared")
            #expect(record.callbackFlags & ours == ours)
            withExtendedLifetime(foreign) {}
        }
    }
}
