import Foundation
import Glibc
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyLab
import TCPNotifyPoll
import Testing

extension KernelSuite {
    /// `watch --mode poll`: sock_diag dumps selected by the filter's bytecode in the kernel, the same rules
    /// evaluated in user space, the same output as push mode; `--mode auto` falls back to it.
    @Suite struct PollingMode {
        static func tcpnotify() throws -> String { try KernelSuite.CLI.tcpnotify() }

        static func notifications(_ process: CLIProcess) -> [Wire.Notification] { process.notifications }

        /// (local, remote, rule) for every rule a notification names; close records as rule "<close>".
        static func signature(_ notifications: [Wire.Notification]) -> Set<String> {
            var pairs = Set<String>()
            for line in notifications {
                let endpoints = "\(line.src) \(line.dst)"
                if line.trigger == .close { pairs.insert(endpoints + " <close>") }
                for rule in line.rules { pairs.insert(endpoints + " " + rule) }
            }
            return pairs
        }

        /// The same iperf3 transfers across a lossy lab path (IPv4, then IPv6), watched at once by push
        /// mode and by poll mode with the same filter and rules: the same (local, remote, rule) triples.
        /// Both rules grow monotonically, so each becomes true once and stays true between polls.
        @Test(.enabled(if: KernelGate.canRun(needing: ["iperf3"])))
        func pollingNotifiesLikePushMode() throws {
            try KernelGate.require(needing: ["iperf3"])
            let lab = try NetworkLab(lossPercent: 2)
            defer { lab.shutdown() }
            let cgroup = try TestCgroup(name: "polling-vs-push")
            defer { cgroup.restore() }

            let port: UInt16 = 5201
            let common = ["watch", "--cgroup", cgroup.path, "--format", "json",
                          "--when", "retrans=total_retrans > 16", "--when", "acked=bytes_acked > 1MB",
                          "dport = :\(port) or sport = :\(port)"]
            let push = try CLIProcess(Self.tcpnotify(), common + ["--mode", "bpf"])
            let poll = try CLIProcess(Self.tcpnotify(), common + ["--mode", "poll", "--interval", "100ms"])
            defer {
                push.signal(SIGKILL)
                poll.signal(SIGKILL)
            }
            #expect(eventually(timeout: commandStartSeconds) { push.standardError.contains("watching") }, "\(push.standardError)")
            #expect(eventually(timeout: commandStartSeconds) { poll.standardError.contains("watching") }, "\(poll.standardError)")

            let server = try lab.spawn(in: .server, ["iperf3", "-s", "-p", String(port)])
            defer { _ = server.terminate() }
            try lab.waitForListener(in: .server, port: port)
            for address in [LabAddress.serverIPv4, LabAddress.serverIPv6] {
                let client = try lab.run(
                    in: .client, ["iperf3", "-c", address, "-p", String(port), "-t", "3", "-b", "1G", "-J"], timeoutSeconds: 20)
                #expect(client.status == 0, "iperf3 to \(address): \(client.stderr)")
            }
            usleep(1_500_000) // a few polls after the last close

            push.signal(SIGINT)
            poll.signal(SIGINT)
            #expect(push.waitForExit() == 0)
            #expect(poll.waitForExit() == 0)
            let pushed = Self.notifications(push), polled = Self.notifications(poll)
            let pushSignature = Self.signature(pushed), pollSignature = Self.signature(polled)
            print("polling vs push: push \(pushed.count) lines, poll \(polled.count) lines; "
                + "\(pushSignature.count) (local, remote, rule) triples in push mode, \(pollSignature.count) in poll mode: "
                + pushSignature.sorted().joined(separator: "; "))
            #expect(!pushSignature.isEmpty)
            #expect(pushSignature.contains { $0.hasSuffix(" retrans") }, "the lossy path retransmitted: \(pushSignature)")
            #expect(pushSignature.contains { $0.hasPrefix(LabAddress.clientIPv4) }, "IPv4")
            #expect(pushSignature.contains { $0.hasPrefix("[") }, "IPv6")
            #expect(pollSignature == pushSignature,
                    "only push: \(pushSignature.subtracting(pollSignature).sorted()); only poll: \(pollSignature.subtracting(pushSignature).sorted())")
            #expect(polled.allSatisfy { [.poll, .close].contains($0.trigger) })
            for line in polled where line.rules.contains("retrans") {
                #expect((line.tcpInfo["total_retrans"] ?? 0) > 16, "the polled tcp_info is the one the rule saw")
            }
            let stats = poll.finalStats
            #expect(poll.lastLineType == Wire.Stats.lineType)
            #expect(stats?.polling != nil, "\"mode\":\"poll\"")
            #expect(stats?.polling?.dumpErrors == 0)
            #expect((stats?.polling?.namespaces ?? 0) >= 3, "the lab's namespaces are polled too: \(String(describing: stats))")
        }

        // MARK: - Kernel-side selection

        /// Local and remote endpoints of a connected socket, from the kernel (16-byte addresses, IPv4 mapped).
        static func endpoints(_ fd: Int32) throws -> (local: Endpoint, remote: Endpoint) {
            func read(_ call: (Int32, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32) throws -> Endpoint {
                var storage = sockaddr_storage()
                var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
                let result = withUnsafeMutablePointer(to: &storage) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { call(fd, $0, &length) }
                }
                guard result == 0 else { throw SocketError("getsockname/getpeername") }
                return withUnsafeBytes(of: storage) { bytes in
                    let port = UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
                    if storage.ss_family == sa_family_t(AF_INET) {
                        return Endpoint(address: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff] + Array(bytes[4..<8]), port: port)
                    }
                    return Endpoint(address: Array(bytes[8..<24]), port: port)
                }
            }
            return (try read { getsockname($0, $1, $2) }, try read { getpeername($0, $1, $2) })
        }

        static let basePort = UInt16(21000 + (getpid() % 1000) * 10)

        struct SelectionCase: Sendable, CustomStringConvertible {
            let filter: String
            let expected: @Sendable (_ local: Endpoint, _ remote: Endpoint) -> Bool
            var description: String { filter }
        }

        static func isIPv4(_ endpoint: Endpoint, _ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) -> Bool {
            endpoint.address == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d]
        }

        static let loopbackIPv6: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]

        /// Port ranges, prefixes and `not`, over IPv4, IPv6 and v4-mapped IPv6 sockets. The expectations
        /// are written out by hand, independently of the filter compiler.
        static let selectionCases: [SelectionCase] = {
            let b = basePort
            return [
                SelectionCase(filter: "dport >= :\(b + 2) and dport <= :\(b + 8) and dst 127.0.0.0/8 and not dst 127.0.0.2") { _, remote in
                    (b + 2...b + 8).contains(remote.port) && remote.isIPv4Mapped && remote.address[12] == 127
                        && !isIPv4(remote, 127, 0, 0, 2)
                },
                SelectionCase(filter: "(dst ::1 or src ::1) and not (sport >= :\(b + 2) and sport <= :\(b + 5))") { local, remote in
                    (remote.address == loopbackIPv6 || local.address == loopbackIPv6) && !(b + 2...b + 5).contains(local.port)
                },
                SelectionCase(filter: "not dst 127.0.0.0/8 and dport < :\(b + 4)") { _, remote in
                    !(remote.isIPv4Mapped && remote.address[12] == 127) && remote.port < b + 4
                },
                SelectionCase(filter: "src 127.0.0.2 or sport > :\(b + 8) and sport != :65535") { local, _ in
                    isIPv4(local, 127, 0, 0, 2) || (local.port > b + 8 && local.port != 65535)
                },
            ]
        }()

        /// ~50 connections (about 100 sockets) on 127.0.0.1, 127.0.0.2, ::1 and v4-mapped ::ffff:127.0.0.1;
        /// a sock_diag dump with the filter's bytecode returns exactly the expected ones among them, and
        /// nothing (of anyone's) that the filter does not match.
        @Test(.enabled(if: KernelGate.canRun), arguments: selectionCases)
        func kernelBytecodeSelectsExactlyTheFilteredSockets(_ selection: SelectionCase) throws {
            try KernelGate.require()
            let b = Self.basePort
            var endpoints: [(host: String, port: UInt16, domain: Int32, target: String)] = []
            for offset in 0..<UInt16(8) {
                endpoints.append(("127.0.0.1", b + offset, AF_INET, "127.0.0.1"))
                endpoints.append(("127.0.0.2", b + offset, AF_INET, "127.0.0.2"))
                endpoints.append(("::1", b + offset, AF_INET6, "::1"))
            }
            // Dual-stack listeners reached by IPv6 clients at ::ffff:127.0.0.1: v4-mapped AF_INET6 sockets.
            endpoints.append(("::", b + 8, AF_INET6, "::ffff:127.0.0.1"))
            endpoints.append(("::", b + 9, AF_INET6, "::ffff:127.0.0.1"))

            var listeners: [TCPSocket] = [], sockets: [TCPSocket] = []
            for endpoint in endpoints {
                let listener = try TCPSocket(domain: endpoint.domain)
                try listener.setOption(SOL_SOCKET, SO_REUSEADDR, 1)
                if endpoint.host == "::" { try listener.setOption(Int32(IPPROTO_IPV6), IPV6_V6ONLY, 0) }
                try listener.bind(SocketAddress(endpoint.host, port: endpoint.port))
                guard listen(listener.fd, 16) == 0 else { throw SocketError("listen") }
                listeners.append(listener)
            }
            for index in 0..<52 {
                let endpoint = endpoints[index % endpoints.count]
                let client = try TCPSocket(domain: endpoint.domain)
                try client.connect(SocketAddress(endpoint.target, port: endpoint.port))
                let accepted = accept(listeners[index % endpoints.count].fd, nil, nil)
                guard accepted >= 0 else { throw SocketError("accept") }
                sockets += [client, TCPSocket(fd: accepted)]
            }
            var expected = Set<UInt64>(), ours = Set<UInt64>(), families: [UInt64: Int32] = [:]
            for socket in sockets {
                let cookie = try socket.cookie()
                let (local, remote) = try Self.endpoints(socket.fd)
                ours.insert(cookie)
                if selection.expected(local, remote) { expected.insert(cookie) }
                var domain: Int32 = 0
                var length = socklen_t(MemoryLayout<Int32>.size)
                _ = getsockopt(socket.fd, SOL_SOCKET, SO_DOMAIN, &domain, &length)
                families[cookie] = domain
            }
            #expect(!expected.isEmpty && expected.count < ours.count, "the case must select some but not all")

            let filter = try FilterExpression.compile(selection.filter)
            let bytecode = try SockDiagBytecode.compile(filter)
            #expect(!bytecode.isEmpty)
            let dumped = try SockDiagClient().dump(bytecode: bytecode)
            let selected = Set(dumped.map(\.cookie)).intersection(ours)
            print("sock_diag bytecode '\(selection.filter)': \(bytecode.count) bytes; \(ours.count) test sockets, "
                + "\(expected.count) expected, \(selected.count) selected; \(dumped.count) sockets dumped in all")
            #expect(selected == expected,
                    "unexpected: \(selected.subtracting(expected).count), missing: \(expected.subtracting(selected).count)")
            for socket in dumped {
                #expect(filter.matches(localAddress: socket.local.address, localPort: socket.local.port,
                                       remoteAddress: socket.remote.address, remotePort: socket.remote.port),
                        "the kernel selected \(socket.local) -> \(socket.remote), which the filter does not match")
                if let family = families[socket.cookie] { #expect(Int32(socket.family) == family) }
                #expect(socket.info != nil)
            }
            // Without bytecode the dump holds every one of them.
            let all = Set(try SockDiagClient().dump(bytecode: []).map(\.cookie))
            #expect(ours.isSubset(of: all))
            withExtendedLifetime((listeners, sockets)) {}
        }

        // MARK: - Fallback

        /// As nobody without capabilities, BPF cannot load, but sock_diag dumps still work: `--mode auto`
        /// says so in one line and notifies by polling.
        @Test(.enabled(if: KernelGate.canRun(needing: ["setpriv"])))
        func autoModeFallsBackToPollingWithoutBPF() throws {
            try KernelGate.require(needing: ["setpriv"])
            let pair = try ConnectedPair.make()
            let port = try pair.listener.localPort()
            let cookie = try pair.client.cookie()
            let watch = try CLIProcess(
                "/usr/bin/setpriv",
                ["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all",
                 Self.tcpnotify(), "watch", "--mode", "auto", "--interval", "100ms", "--format", "json",
                 "--when", "acked=bytes_acked > 100KB", "dport = :\(port)"])
            defer { watch.signal(SIGKILL) }
            #expect(eventually(timeout: commandStartSeconds) { watch.standardError.contains("watching") }, "\(watch.standardError)")
            let fallback = watch.standardError.split(separator: "\n").filter { $0.contains("BPF unavailable") }
            #expect(fallback.count == 1, "exactly one line says why: \(watch.standardError)")
            #expect(fallback.first?.contains("polling with sock_diag every 100ms instead") == true, "\(fallback)")
            #expect(fallback.first?.contains("CAP_BPF") == true, "it names what is missing: \(fallback)")

            try transfer(1 << 20, from: pair.client, to: pair.server)
            let notified = eventually(timeout: 5) {
                Self.notifications(watch).contains { $0.cookie == cookie }
            }
            #expect(notified, "a polled notification for the connection: \(watch.outputLines.map(\.text))")
            watch.signal(SIGINT)
            #expect(watch.waitForExit() == 0)
            let line = Self.notifications(watch).first { $0.cookie == cookie }
            #expect(line?.trigger == .poll)
            #expect(line?.rules == ["acked"])
            #expect(line?.src == "127.0.0.1:\(try pair.client.localPort())")
            #expect(line?.dst == "127.0.0.1:\(port)")
            let stats = watch.finalStats
            #expect(stats?.polling != nil, "a stats line with \"mode\":\"poll\": \(String(describing: stats))")
        }

        static let badModeInput: [(arguments: [String], fragment: String)] = [
            (["watch", "--mode", "push"], "--mode"),
            (["watch", "--mode", "poll", "--interval", "5"], "unit"),
            (["watch", "--mode", "poll", "--interval", "5Mbit"], "time unit"),
            (["watch", "--mode", "poll", "--interval", "0ms"], "1ms"),
            (["watch", "--mode", "poll", "--diagnose"], "--diagnose"),
        ]

        @Test(arguments: badModeInput.indices)
        func badModeOrIntervalIsRejectedWithExitCode2(index: Int) throws {
            let (arguments, fragment) = Self.badModeInput[index]
            let result = try CLIProcess.run(Self.tcpnotify(), arguments)
            #expect(result.status == 2, "\(arguments): status \(result.status), stderr: \(result.stderr)")
            #expect(result.stderr.contains(fragment), "\(arguments): \(result.stderr)")
        }
    }
}
