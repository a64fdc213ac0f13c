import Foundation
import Glibc
import TCPNotifyCore
import TCPNotifyLab
import Testing

extension KernelSuite {
    /// `serve` without BPF polls with sock_diag, as `watch` does: `--mode poll`, or `--mode auto` (the
    /// default) on a host that refuses the sock_ops program (simulated with TCPNOTIFY_REFUSE_PROGRAMS).
    /// Subscribers keep their own filters and rules; the mode is in the logs and the final stats line.
    @Suite struct ServePolling {
        static let ways: [(name: String, arguments: [String], environment: [String: String])] = [
            ("--mode poll", ["--mode", "poll", "--interval", "100ms"], [:]),
            ("auto, BPF refused", ["--interval", "100ms"], ["TCPNOTIFY_REFUSE_PROGRAMS": "sockops_main"]),
        ]

        @Test(.enabled(if: KernelGate.canRun), arguments: ways.indices)
        func subscribersGetTheirOwnNotificationsByPolling(index: Int) throws {
            try KernelGate.require()
            let way = Self.ways[index]
            let cgroup = try TestCgroup(name: "serve-poll")
            defer { cgroup.restore() }
            let serve = try ServeProcess(cgroup: cgroup, extra: way.arguments, environment: way.environment)
            #expect(try attachedProgramIDs(cgroup: cgroup.path).isEmpty, "\(way.name): polling attaches nothing")
            #expect(serve.process.standardError.contains("\"mode\": \"poll\"") || serve.process.standardError.contains("mode=poll"),
                    "\(way.name): the log says it polls: \(serve.process.standardError)")
            if !way.environment.isEmpty {
                #expect(serve.process.standardError.contains("refused BPF program 'sockops_main'"), "\(serve.process.standardError)")
            }
            let serverA = try LoopbackServer(), serverB = try LoopbackServer()
            let a = try RawSubscriber(socketPath: serve.socketPath)
            try a.subscribe(filter: "dport = :\(serverA.port)", rules: ["a_acked=bytes_acked > 1000"])
            let b = try RawSubscriber(socketPath: serve.socketPath)
            try b.subscribe(filter: "dport = :\(serverB.port)", rules: ["b_fin=state == FIN_WAIT2"])
            let pairA = try serverA.connect(), pairB = try serverB.connect()
            for pair in [pairA, pairB] {
                try transfer(64 << 10, from: pair.client, to: pair.server)
            }
            try pairB.client.shutdownWrite() // FIN_WAIT2 once the server's kernel acks the FIN
            let cookieA = try pairA.client.cookie(), cookieB = try pairB.client.cookie()
            #expect(eventually(timeout: 5) { a.notifications.contains { $0.cookie == cookieA } }, "\(way.name): \(a.allLines)")
            #expect(eventually(timeout: 5) { b.notifications.contains { $0.cookie == cookieB } }, "\(way.name): \(b.allLines)")
            usleep(300_000)
            #expect(a.notifications.allSatisfy { $0.cookie == cookieA && $0.rules == ["a_acked"] && $0.trigger == .poll },
                    "\(way.name): A only hears of its socket and rule: \(a.allLines)")
            #expect(b.notifications.allSatisfy { $0.cookie == cookieB && $0.rules == ["b_fin"] && $0.trigger == .poll },
                    "\(way.name): \(b.allLines)")
            serve.process.signal(SIGTERM)
            #expect(serve.process.waitForExit() == 0, "\(serve.process.standardError)")
            #expect(serve.process.outputLines.last?.text.contains("\"mode\":\"poll\"") == true, "\(serve.process.outputLines.suffix(1))")
            #expect(eventually { a.ends == 1 && b.ends == 1 })
        }

        /// SIGHUP while polling: the config subscription's new rules apply to a socket tracked before the
        /// reload; a bad file keeps the running configuration. (About 2 s.)
        @Test(.enabled(if: KernelGate.canRun))
        func sighupReloadsTheConfigSubscriptionWhilePolling() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "serve-poll-reload")
            defer { cgroup.restore() }
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("tcpnotify-serve-poll-\(getpid()).yaml").path
            defer { unlink(path) }
            try "filter: \"dst 127.0.0.1\"\nrules:\n  - \"never=state == LISTEN\"\n".write(toFile: path, atomically: true, encoding: .utf8)
            let serve = try ServeProcess(cgroup: cgroup, extra: ["--mode", "poll", "--interval", "100ms", "--config", path])
            let server = try LoopbackServer()
            let pair = try server.connect()
            let cookie = try pair.client.cookie()
            try transfer(64 << 10, from: pair.client, to: pair.server)

            try "rules:\n  - nope=rtt >> 5\n".write(toFile: path, atomically: true, encoding: .utf8)
            serve.process.signal(SIGHUP)
            #expect(eventually { serve.process.standardError.contains("reload failed") }, "\(serve.process.standardError)")
            try "filter: \"dst 127.0.0.1\"\nrules:\n  - {name: acked, when: \"bytes_acked > 1000\"}\n".write(
                toFile: path, atomically: true, encoding: .utf8)
            serve.process.signal(SIGHUP)
            #expect(eventually { serve.process.standardError.contains("reloaded") }, "\(serve.process.standardError)")
            #expect(eventually(timeout: 5) {
                serve.process.notifications.contains { $0.rules == ["acked"] && $0.cookie == cookie && $0.trigger == .poll }
            }, "the socket tracked before the reload notifies under the new rule: \(serve.process.outputLines.map(\.text))")
            #expect(!serve.process.notifications.contains { $0.rules == ["never"] })
            serve.process.signal(SIGTERM)
            #expect(serve.process.waitForExit() == 0, "\(serve.process.standardError)")
        }

        /// `--mode bpf` where BPF is refused: no fallback, exit 69 naming the program.
        @Test(.enabled(if: KernelGate.canRun))
        func modeBPFDoesNotFallBack() throws {
            try KernelGate.require()
            let result = try CLIProcess(
                KernelSuite.CLI.tcpnotify(),
                ["serve", "--mode", "bpf", "--socket", "/tmp/tcpnotify-bpf-only-\(getpid()).sock", "--metrics-address", "off"],
                environment: ["TCPNOTIFY_REFUSE_PROGRAMS": "sockops_main"])
            #expect(result.waitForExit(timeout: 20) == 69, "\(result.standardError)")
            #expect(!result.standardError.contains("polling"), "\(result.standardError)")
        }
    }
}
