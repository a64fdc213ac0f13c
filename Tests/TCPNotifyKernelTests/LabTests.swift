import Foundation
import Glibc
import TCPNotifyLab
import Testing

extension KernelSuite {
    /// The network lab itself: namespaces, routing, the loss filter, the bottleneck, cleanup, test cgroups.
    @Suite struct LabTests {
        static let commands = ["iperf3", "tc", "sysctl"]
        static let iperfPort: UInt16 = 5201
        /// Loss runs are paced: unpaced, veth forwarding on two CPUs reorders enough at 15+ Gbit/s for
        /// hundreds to thousands of spurious fast retransmits (DSACKed) on a lossless path; at 1 Gbit/s, none.
        static let pacedRate = ["-b", "1G"]

        /// Starts a one-shot iperf3 server in the server namespace and waits until it listens.
        static func startServer(_ lab: NetworkLab, oneShot: Bool = true) throws -> LabProcess {
            let server = try lab.spawn(in: .server, ["iperf3", "-s", "-p", String(iperfPort)] + (oneShot ? ["-1"] : []))
            try lab.waitForListener(in: .server, port: iperfPort)
            return server
        }

        /// Runs an iperf3 client in the client namespace and parses its JSON report.
        static func runClient(_ lab: NetworkLab, to address: String, _ amount: [String]) throws -> IperfReport {
            let client = try lab.run(
                in: .client, ["iperf3", "-c", address, "-p", String(iperfPort), "-J"] + amount, timeoutSeconds: 12)
            #expect(client.succeeded, "iperf3 client: status \(client.status), \(client.stderr) \(client.stdout.prefix(400))")
            return try IperfReport(json: client.stdout)
        }

        @Test(.enabled(if: KernelGate.canRun(needing: LabTests.commands)))
        func clientReachesServerOverIPv4AndIPv6() throws {
            try KernelGate.require(needing: Self.commands)
            let lab = try NetworkLab()
            defer { lab.shutdown() }
            let server = try Self.startServer(lab, oneShot: false)
            defer { server.terminate() }

            for (clientAddress, serverAddress) in [(LabAddress.clientIPv4, LabAddress.serverIPv4),
                                                   (LabAddress.clientIPv6, LabAddress.serverIPv6)] {
                let report = try Self.runClient(lab, to: serverAddress, ["-n", "256K"])
                // (sum_received of so short a run is whatever the server had counted when it reported)
                #expect(report.bytesSent >= 256 * 1024)
                // Routed through the router: the client's own address on its side, the server's on the other.
                #expect(report.localHost == clientAddress)
                #expect(report.remoteHost == serverAddress)
            }
        }

        @Test(.enabled(if: KernelGate.canRun(needing: LabTests.commands)),
              arguments: [LabAddress.serverIPv4, LabAddress.serverIPv6])
        func randomLossCausesRetransmits(serverAddress: String) throws {
            try KernelGate.require(needing: Self.commands)
            let lab = try NetworkLab(lossPercent: 2)
            defer { lab.shutdown() }
            let server = try Self.startServer(lab)
            defer { server.terminate() }

            let report = try Self.runClient(lab, to: serverAddress, ["-t", "3"] + Self.pacedRate)
            let counters = try lab.lossCounters()
            let dropRatio = Double(counters.droppedPackets) / Double(max(counters.matchedPackets, 1))
            print("lab, 2 % loss to \(serverAddress): \(report.retransmits) retransmits, \(report.receivedBitsPerSecond / 1e6) Mbit/s; "
                + "filter saw \(counters.seenPackets), matched \(counters.matchedPackets), dropped \(counters.droppedPackets)")
            #expect(report.retransmits > 0)
            #expect(counters.droppedPackets > 0)
            #expect(counters.matchedPackets <= counters.seenPackets)
            if counters.matchedPackets >= 1000 {
                #expect((0.01...0.03).contains(dropRatio), "dropped \(dropRatio * 100) % of matched packets")
            }
        }

        @Test(.enabled(if: KernelGate.canRun(needing: LabTests.commands)))
        func noLossNoRetransmits() throws {
            try KernelGate.require(needing: Self.commands)
            let lab = try NetworkLab()
            defer { lab.shutdown() }
            let server = try Self.startServer(lab)
            defer { server.terminate() }

            let report = try Self.runClient(lab, to: LabAddress.serverIPv4, ["-t", "3"] + Self.pacedRate)
            print("lab, no loss: \(report.retransmits) retransmits, \(report.receivedBitsPerSecond / 1e6) Mbit/s")
            // The lossy run above retransmits thousands of times (5,000-6,500 at 2 %). A clean path can still
            // retransmit a few dozen segments when the VM stalls a CPU for a few ms at 1 Gbit/s (RACK and
            // tail-loss probes fire; 45 in one CI run): a path that drops would show hundreds or more.
            #expect(report.retransmits <= 100, "a clean, paced path should (nearly) never retransmit")
        }

        @Test(.enabled(if: KernelGate.canRun(needing: LabTests.commands)))
        func deadPathDropsEverythingUntilReplaced() throws {
            try KernelGate.require(needing: Self.commands)
            let lab = try NetworkLab()
            defer { lab.shutdown() }
            let server = try Self.startServer(lab, oneShot: false)
            defer { server.terminate() }

            try lab.setLoss(.deadPath)
            let blocked = try lab.run(
                in: .client, ["iperf3", "-c", LabAddress.serverIPv4, "-p", String(Self.iperfPort), "-n", "64K",
                              "--connect-timeout", "500"], timeoutSeconds: 10)
            #expect(!blocked.succeeded, "nothing should get through a dead path")
            let counters = try lab.lossCounters()
            #expect(counters.droppedPackets > 0)
            #expect(counters.droppedPackets == counters.seenPackets, "\(counters)")

            try lab.setLoss(LossSettings(dropPercent: 0))
            let report = try Self.runClient(lab, to: LabAddress.serverIPv4, ["-n", "64K"])
            #expect(report.bytesSent >= 64 * 1024)
            #expect(try lab.lossCounters().droppedPackets == 0, "the replacement starts with fresh counters")
            try lab.clearLoss()
            try lab.clearLoss() // nothing left to remove: still fine
        }

        @Test(.enabled(if: KernelGate.canRun(needing: LabTests.commands)))
        func bottleneckLimitsThroughput() throws {
            try KernelGate.require(needing: Self.commands)
            let rateKbitPerSecond = 20_000
            let lab = try NetworkLab(bottleneck: Bottleneck(rateKbitPerSecond: rateKbitPerSecond))
            defer { lab.shutdown() }
            let server = try Self.startServer(lab)
            defer { server.terminate() }

            let report = try Self.runClient(lab, to: LabAddress.serverIPv4, ["-t", "2"])
            let rateBitsPerSecond = Double(rateKbitPerSecond) * 1000
            print("lab, tbf \(rateKbitPerSecond / 1000) Mbit/s: \(report.receivedBitsPerSecond / 1e6) Mbit/s received")
            #expect(report.receivedBitsPerSecond <= rateBitsPerSecond * 1.1)
            #expect(report.receivedBitsPerSecond >= rateBitsPerSecond * 0.5)
        }

        @Test(.enabled(if: KernelGate.canRun(needing: LabTests.commands)))
        func shutdownRemovesNamespacesAndProcesses() throws {
            try KernelGate.require(needing: Self.commands)
            let lab = try NetworkLab()
            defer { lab.shutdown() }
            let namespaces = LabHost.allCases.map(lab.namespace)
            #expect(Set(namespaces).isSubset(of: NetworkLab.existingNamespaces()))
            let sleeper = try lab.spawn(in: .server, ["sleep", "60"])

            lab.shutdown()
            lab.shutdown() // idempotent
            #expect(!sleeper.isRunning)
            let listed = try Subprocess.run(["ip", "netns", "list"]).checked().stdout
            #expect(!listed.contains("\(NetworkLab.namespacePrefix)\(getpid())-"), "left behind: \(listed)")
            #expect(throws: LabError.self) { try lab.run(in: .client, ["true"]) }
        }

        @Test(.enabled(if: KernelGate.canRun(needing: LabTests.commands)))
        func cleanupStaleRemovesNamespacesOfDeadProcesses() throws {
            try KernelGate.require(needing: Self.commands)
            // The pid of a process that has just exited stands for a crashed test run.
            let deadPID = try #require(try Self.pidOfExitedProcess())
            let stale = "\(NetworkLab.namespacePrefix)\(deadPID)-1-c"
            try Subprocess.run(["ip", "netns", "add", stale]).checked()
            defer { _ = try? Subprocess.run(["ip", "netns", "delete", stale]) }

            NetworkLab.cleanupStale()
            #expect(!NetworkLab.existingNamespaces().contains(stale))
        }

        @Test(.enabled(if: KernelGate.canRun))
        func testCgroupMovesThisProcessAndBack() throws {
            try KernelGate.require()
            let before = try String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)
            let cgroup = try TestCgroup(name: "lab-self")
            defer { cgroup.restore() }
            let mount = try TestCgroup.mountPoint()
            let relative = String(cgroup.path.dropFirst(mount.count))
            #expect(try String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8).contains("0::\(relative)\n"))
            // Children start in it too.
            let child = try Subprocess.run(["cat", "/proc/self/cgroup"]).checked()
            #expect(child.stdout.contains("0::\(relative)\n"))

            try cgroup.restoreOrThrow()
            #expect(try String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8) == before)
            #expect(!FileManager.default.fileExists(atPath: cgroup.path))
        }

        @Test(.enabled(if: KernelGate.canRun))
        func testCgroupWrapsSubprocessesWithoutMovingThisProcess() throws {
            try KernelGate.require()
            let before = try String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)
            let cgroup = try TestCgroup(name: "lab-wrapped", movingThisProcess: false)
            defer { cgroup.restore() }
            let relative = String(cgroup.path.dropFirst(try TestCgroup.mountPoint().count))

            let child = try cgroup.run(["cat", "/proc/self/cgroup"]).checked()
            #expect(child.stdout.contains("0::\(relative)\n"), "\(child.stdout)")
            let lab = try NetworkLab()
            defer { lab.shutdown() }
            let inLab = try lab.run(in: .client, ["cat", "/proc/self/cgroup"], cgroup: cgroup).checked()
            #expect(inLab.stdout.contains("0::\(relative)\n"), "\(inLab.stdout)")
            lab.shutdown()
            #expect(try String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8) == before)
            try cgroup.restoreOrThrow()
            #expect(!FileManager.default.fileExists(atPath: cgroup.path))
        }

        @Test(.enabled(if: KernelGate.canRun))
        func testCgroupCleanupStaleRemovesDirectoriesOfDeadProcesses() throws {
            try KernelGate.require()
            let deadPID = try #require(try Self.pidOfExitedProcess())
            let parent = try TestCgroup.mountPoint() + "/" + TestCgroup.parentDirectoryName
            let stale = "\(parent)/crashed-\(deadPID)"
            #expect(mkdir(parent, 0o755) == 0 || errno == EEXIST)
            #expect(mkdir(stale, 0o755) == 0)
            defer { rmdir(stale) }

            TestCgroup.cleanupStale()
            #expect(!FileManager.default.fileExists(atPath: stale))
        }

        @Test func missingPrerequisitesFailRatherThanPass() {
            #expect(!Prerequisites.missing(commands: ["tnl-no-such-command"]).isEmpty)
            #expect(throws: LabError.self) { try KernelGate.require(needing: ["tnl-no-such-command"]) }
        }

        @Test func lossConfigMatchesTheCLayout() {
            #expect(MemoryLayout<LossConfig>.size == LossConfig.expectedByteCount)
            #expect(MemoryLayout<LossConfig>.offset(of: \.dropPerMillion) == 0)
            #expect(MemoryLayout<LossConfig>.offset(of: \.match) == 4)
            #expect(MemoryLayout<LossConfig>.offset(of: \.l3OffsetBytes) == 8)
            #expect(LossSettings(dropPercent: 2).dropPerMillion == 20_000)
        }

        /// A pid that no process has right now: that of a child which has exited (and been reaped).
        static func pidOfExitedProcess() throws -> Int32? {
            let child = try LabProcess(["true"])
            _ = child.waitForExit(timeoutSeconds: 5)
            return kill(child.pid, 0) != 0 && errno == ESRCH ? child.pid : nil
        }
    }
}
