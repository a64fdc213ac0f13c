import Foundation
import Glibc
import Testing
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyLab

extension KernelSuite.Serve {
    /// A subscription narrowed to a cgroup or a systemd unit ("cgroup", "unit" in the subscribe request,
    /// `subscribe --cgroup/--unit/--pid`): it hears only of the sockets made there, while a subscriber
    /// without a scope hears of all.
    @Suite struct Scope {
        @Test(.enabled(if: KernelGate.canRun))
        func subscriptionsByCgroupAndUnitHearOnlyTheirSockets() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "serve-scope")
            defer { cgroup.restore() }
            let unitName = "tnscope\(getpid()).service"
            let inner = cgroup.path + "/" + unitName
            try #require(mkdir(inner, 0o755) == 0 || errno == EEXIST)
            defer { rmdir(inner) }
            let serve = try ServeProcess(cgroup: cgroup)
            let server = try LoopbackServer()
            let rules = ["closing=state == FIN_WAIT1 or state == CLOSE_WAIT"]
            let everything = try RawSubscriber(socketPath: serve.socketPath)
            try everything.subscribe(filter: "", rules: rules)
            let byCgroup = try RawSubscriber(socketPath: serve.socketPath)
            try byCgroup.subscribe(filter: "", rules: rules, scope: SubscriptionScope(cgroup: inner))
            let byUnit = try RawSubscriber(socketPath: serve.socketPath)
            try byUnit.subscribe(filter: "", rules: rules, scope: SubscriptionScope(unit: unitName))

            // A client made by a process in the inner cgroup; the accepted end is this process's (outer).
            let client = Process()
            client.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            client.arguments = ["-c", """
                import os, socket, time
                open("\(inner)/cgroup.procs", "w").write(str(os.getpid()))
                s = socket.create_connection(("127.0.0.1", \(server.port)))
                time.sleep(0.5); s.shutdown(socket.SHUT_WR); time.sleep(3)
                """]
            try client.run()
            defer { client.terminate(); client.waitUntilExit() }
            let accepted = accept(server.listener.fd, nil, nil)
            try #require(accepted >= 0)
            defer { close(accepted) }
            let acceptedCookie = try SocketInfo.cookie(fd: accepted)

            let serverPort = ":\(server.port)"
            #expect(eventually(timeout: 10) {
                let heard = everything.notifications
                return heard.contains { $0.cookie == acceptedCookie } && heard.contains { $0.dst.hasSuffix(serverPort) }
            }, "the unscoped subscriber hears both ends: \(everything.allLines)")
            for scoped in [byCgroup, byUnit] {
                #expect(eventually(timeout: 5) { scoped.notifications.contains { $0.dst.hasSuffix(serverPort) } },
                        "the client in the inner cgroup: \(scoped.allLines)")
                #expect(!scoped.notifications.contains { $0.cookie == acceptedCookie }, "the outer socket leaked: \(scoped.allLines)")
            }
        }

        @Test(.enabled(if: KernelGate.canRun))
        func badScopesAreRefusedWithTheReason() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "serve-scope-bad")
            defer { cgroup.restore() }
            let serve = try ServeProcess(cgroup: cgroup)
            let mount = try TestCgroup.mountPoint()
            let cases: [(SubscriptionScope, String)] = [
                (SubscriptionScope(cgroup: "/nonexistent-tcpnotify-cgroup"), "nonexistent-tcpnotify-cgroup"),
                (SubscriptionScope(unit: "no-such-unit-\(getpid()).service"), "no-such-unit"),
                (SubscriptionScope(pid: 999_999_999), "999999999"),
                (SubscriptionScope(cgroup: mount), "is not under"),
            ]
            for (scope, fragment) in cases {
                let subscriber = try RawSubscriber(socketPath: serve.socketPath)
                do {
                    try subscriber.subscribe(filter: "", rules: [], scope: scope)
                    Issue.record("\(scope) accepted")
                } catch let refused as SubscribeRefused {
                    #expect(refused.message.contains(fragment), "\(scope): \(refused.message)")
                }
            }
            let both = try RawSubscriber(socketPath: serve.socketPath)
            try both.send("{\"type\":\"subscribe\",\"cgroup\":\"/x\",\"pid\":1}\n")
            #expect(eventually { both.errorMessages.contains { $0.contains("at most one") } }, "\(both.allLines)")
            #expect(serve.isRunning)
        }
    }
}
