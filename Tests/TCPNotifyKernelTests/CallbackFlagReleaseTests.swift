import Foundation
import Glibc
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyLab
import Testing

/// The callback flags of `sockets`, read by a snapshot iterator (a program that attaches nothing).
private func callbackFlags(of cookies: [UInt64], port: UInt16) throws -> [UInt64: UInt32] {
    let program = try TCPNotifyProgram(
        configuration: WatchConfiguration(
            filter: try FilterExpression.compile("dport = :\(port) or sport = :\(port)"), rules: try RuleExpression.compile([])),
        purpose: .snapshot)
    let snapshot = try program.snapshot(in: NetworkNamespaces.all())
    var flags: [UInt64: UInt32] = [:]
    for entry in snapshot.sockets where cookies.contains(entry.socket.cookie) { flags[entry.socket.cookie] = entry.socket.callbackFlags }
    return flags
}

extension KernelSuite {
    /// A clean stop clears exactly the callback flags tcpnotify switched on, on the sockets it enrolled;
    /// another sock_ops program's flag on the same sockets stays. About 1 s.
    @Suite struct CallbackFlagReleaseTests {
        static let ours: UInt32 = 0x1 | 0x2 | 0x4 | 0x8 // RTO, RETRANS, STATE, RTT

        @Test(.enabled(if: KernelGate.canRun))
        func cleanStopClearsOurFlagsAndKeepsForeignOnes() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "release-flags")
            defer { cgroup.restore() }
            let foreign = try ForeignSockOps(cgroupPath: cgroup.path)
            let listener = try TCPSocket.listener()
            let port = try listener.localPort()
            // An unselected connection on the same cgroup: never ours, its flags are the foreign program's.
            let other = try ConnectedPair.make()
            let harness = try WatchHarness(cgroupPath: cgroup.path, filter: "dport = :\(port) or sport = :\(port)",
                                           rules: ["fin=state == FIN_WAIT1"])
            let pair = try ConnectedPair.connect(to: listener)
            let cookies = [try pair.client.cookie(), try pair.server.cookie()]
            let before = try callbackFlags(of: cookies, port: port)
            #expect(before.count == 2, "\(before)")
            for (cookie, flags) in before {
                #expect(flags & Self.ours == Self.ours, "enrolled with our flags: \(cookie) \(flags)")
                #expect(flags & ForeignSockOps.flag != 0, "foreign flag set: \(cookie) \(flags)")
            }
            harness.attachment.detach()
            let release = harness.program.releaseCallbackFlags()
            #expect(release.cleared == 2 && release.kept == 0 && release.failure == nil, "\(release.summary)")
            let after = try callbackFlags(of: cookies, port: port)
            #expect(after.count == 2, "\(after)")
            for (cookie, flags) in after {
                #expect(flags & Self.ours == 0, "our flags cleared: \(cookie) \(flags)")
                #expect(flags & ForeignSockOps.flag != 0, "the foreign flag survives: \(cookie) \(flags)")
            }
            let otherFlags = try callbackFlags(of: [try other.client.cookie()], port: try other.listener.localPort())
            #expect(otherFlags.values.allSatisfy { $0 == ForeignSockOps.flag }, "an unselected socket is untouched: \(otherFlags)")
            // A second release finds nothing left to clear.
            #expect(harness.program.releaseCallbackFlags().cleared == 0)
            withExtendedLifetime(foreign) {}
        }
    }
}
