import Foundation
import Glibc
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyLab
import Testing

extension KernelSuite {
    /// What happens around tcpnotify while it runs: its reader goes away, a subscriber dies mid-frame,
    /// the cgroup or the socket directory is removed, a second instance runs on the same cgroup, a
    /// `kill -9` and a restart, SIGTERM with clients connected. Each test takes about a second.
    @Suite struct Faults {
        static func tcpnotify() throws -> String { try KernelSuite.CLI.tcpnotify() }

        /// `tcpnotify watch | head -1`: once head has its line and exits, watch notices at once (not at
        /// its next write, which may never come) and exits 0.
        @Test(.enabled(if: KernelGate.canRun))
        func watchIntoHeadStopsWhenHeadExits() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "fault-head")
            defer { cgroup.restore() }
            let listener = try TCPSocket.listener()
            let port = try listener.localPort()
            let pipeline = try CLIProcess("/bin/bash", [
                "-c", "\"$0\" watch --mode bpf --cgroup \"$1\" --format json --when 'acked=bytes_acked > 1000' 'dport = :'\"$2\" | head -1; exit ${PIPESTATUS[0]}",
                try Self.tcpnotify(), cgroup.path, String(port),
            ])
            #expect(eventually(timeout: commandStartSeconds) { pipeline.standardError.contains("watching") }, "\(pipeline.standardError)")
            let pair = try ConnectedPair.connect(to: listener)
            try transfer(64 << 10, from: pair.client, to: pair.server)
            #expect(eventually(timeout: 5) { !pipeline.outputLines.isEmpty }, "\(pipeline.standardError)")
            let headPrinted = pipeline.outputLines.first?.monotonicNanoseconds ?? MonotonicClock.nanoseconds()
            let status = pipeline.waitForExit(timeout: 5)
            let seconds = Double(MonotonicClock.nanoseconds() - headPrinted) / 1e9
            #expect(status == 0, "watch's status \(String(describing: status)): \(pipeline.standardError)")
            #expect(seconds < 1, "watch stopped \(seconds) s after head exited")
            print("faults: watch | head -1 ended \(Int(seconds * 1000)) ms after head's line")
        }

        /// A subscriber killed mid-frame (kill -9 of `tcpnotify subscribe` while lines stream, a connection
        /// reset while the daemon writes to it, half a request and then nothing): the daemon keeps
        /// serving the others.
        @Test(.enabled(if: KernelGate.canRun))
        func subscriberKilledMidFrameLeavesTheOthersServed() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "fault-midframe")
            defer { cgroup.restore() }
            let serve = try ServeProcess(cgroup: cgroup)
            let server = try LoopbackServer()
            let steady = try RawSubscriber(socketPath: serve.socketPath)
            try steady.subscribe(filter: "dport = :\(server.port)", rules: ["acked=bytes_acked > 1000"])
            let killed = try CLIProcess(try Self.tcpnotify(), [
                "subscribe", "--socket", serve.socketPath, "--when", "acked=bytes_acked > 0", "dport = :\(server.port)",
            ])
            #expect(eventually(timeout: 10) { killed.standardError.contains("subscribed") }, "\(killed.standardError)")
            let reset = try RawSubscriber(socketPath: serve.socketPath, receiveBufferBytes: 2048, paused: true)
            try reset.send(#"{"type":"subscribe","filter":"dport = :\#(server.port)","rules":["any=bytes_acked >= 0"]}"# + "\n")
            _ = reset.readLineBlocking()
            let half = try RawSubscriber(socketPath: serve.socketPath, paused: true)
            try half.send(#"{"type":"subscr"#)

            var pairs: [ConnectedPair] = []
            for index in 0..<60 {
                let pair = try server.connect()
                try transfer(16 << 10, from: pair.client, to: pair.server)
                pairs.append(pair)
                if index == 30 {
                    killed.signal(SIGKILL)
                    var linger = linger(l_onoff: 1, l_linger: 0) // close with a reset, lines half written
                    setsockopt(reset.fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<linger>.size))
                    shutdown(reset.fd, Int32(SHUT_RDWR))
                    shutdown(half.fd, Int32(SHUT_RDWR))
                }
            }
            _ = killed.waitForExit(timeout: 5)
            let later = try server.connect()
            try transfer(16 << 10, from: later.client, to: later.server)
            let cookie = try later.client.cookie()
            #expect(eventually(timeout: 5) { steady.notifications.contains { $0.cookie == cookie } }, "\(steady.allLines.suffix(3))")
            #expect(serve.isRunning, "\(serve.process.standardError)")
            #expect(eventually(timeout: 5) { serve.process.standardError.components(separatedBy: "subscriber left").count >= 3 },
                    "both dead subscribers leave: \(serve.process.standardError)")
            serve.process.signal(SIGTERM)
            #expect(serve.process.waitForExit() == 0)
        }

        /// An entry of /run/netns that is no namespace (the empty file a failed `ip netns add` leaves; in
        /// another mount namespace, every one made after it was cloned): found while another helper's
        /// tests ran, it made each subscriber's departure fail and its slot never be reused.
        @Test(.enabled(if: KernelGate.canRun))
        func aStaleNetnsFileDoesNotBreakDepartures() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "fault-netns")
            defer { cgroup.restore() }
            mkdir("/run/netns", 0o755)
            let stale = "/run/netns/tcpnotify-stale-\(getpid())"
            #expect(FileManager.default.createFile(atPath: stale, contents: nil))
            defer { unlink(stale) }
            let serve = try ServeProcess(cgroup: cgroup)
            let first = try RawSubscriber(socketPath: serve.socketPath)
            let slot = try first.subscribe(filter: "dport = :1", rules: ["a=bytes_acked > 0"]).subscriber
            shutdown(first.fd, Int32(SHUT_RDWR))
            #expect(eventually(timeout: 5) { serve.process.standardError.contains("subscriber left") }, "\(serve.process.standardError)")
            let second = try RawSubscriber(socketPath: serve.socketPath)
            #expect(try second.subscribe(filter: "dport = :2", rules: ["b=bytes_acked > 0"]).subscriber == slot, "the slot is reused")
            #expect(!serve.process.standardError.contains(stale), "the file is not taken for a namespace: \(serve.process.standardError)")
        }

        /// The watched cgroup removed while attached: `watch` and `serve` say so and stop, exit 0
        /// (nothing there can be seen any more; a unit's cgroup made again is another cgroup).
        @Test(.enabled(if: KernelGate.canRun), arguments: ["watch", "serve"])
        func removedCgroupStopsWithAClearMessage(command: String) throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "fault-rmdir-\(command)")
            defer { cgroup.restore() }
            let child = cgroup.path + "/doomed"
            #expect(mkdir(child, 0o755) == 0)
            defer { rmdir(child) }
            let directory = "/tmp/tcpnotify-rmdir-\(getpid())"
            mkdir(directory, 0o755)
            defer { _ = try? FileManager.default.removeItem(atPath: directory) }
            let arguments = command == "watch"
                ? ["watch", "--mode", "bpf", "--cgroup", child, "--format", "json"]
                : ["serve", "--mode", "bpf", "--cgroup", child, "--socket", directory + "/s.sock", "--metrics-address", "off"]
            let process = try CLIProcess(try Self.tcpnotify(), arguments)
            #expect(eventually(timeout: commandStartSeconds) {
                process.standardError.contains("watching") || process.standardError.contains("serving on")
            }, "\(process.standardError)")
            var subscriber: RawSubscriber?
            if command == "serve" {
                subscriber = try RawSubscriber(socketPath: directory + "/s.sock")
                try subscriber?.subscribe(filter: "", rules: ["acked=bytes_acked > 0"])
            }
            #expect(rmdir(child) == 0, "rmdir: \(errno)")
            let removed = MonotonicClock.nanoseconds()
            #expect(process.waitForExit(timeout: 5) == 0, "\(process.standardError)")
            let seconds = Double(MonotonicClock.nanoseconds() - removed) / 1e9
            #expect(seconds < 2, "stopped \(seconds) s after the rmdir")
            #expect(process.standardError.contains("the cgroup \(child) was removed"), "\(process.standardError)")
            #expect(process.outputLines.last?.text.contains("\"type\":\"stats\"") == true, "final statistics")
            if let subscriber {
                #expect(eventually { subscriber.ends == 1 }, "\(subscriber.allLines.suffix(2))")
            }
        }

        /// The socket's directory removed while serving: the socket is made again at the same path
        /// within a second; the connected subscriber keeps its stream and a new one can subscribe.
        @Test(.enabled(if: KernelGate.canRun))
        func removedSocketDirectoryIsMadeAgain() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "fault-sockdir")
            defer { cgroup.restore() }
            let serve = try ServeProcess(cgroup: cgroup)
            let server = try LoopbackServer()
            let first = try RawSubscriber(socketPath: serve.socketPath)
            try first.subscribe(filter: "dport = :\(server.port)", rules: ["acked=bytes_acked > 1000"])
            try FileManager.default.removeItem(atPath: serve.directory)
            #expect(eventually(timeout: 3) { FileManager.default.fileExists(atPath: serve.socketPath) }, "\(serve.process.standardError)")
            let second = try RawSubscriber(socketPath: serve.socketPath)
            try second.subscribe(filter: "dport = :\(server.port)", rules: ["acked=bytes_acked > 1000"])
            let pair = try server.connect()
            try transfer(64 << 10, from: pair.client, to: pair.server)
            let cookie = try pair.client.cookie()
            for subscriber in [first, second] {
                #expect(eventually(timeout: 5) { subscriber.notifications.contains { $0.cookie == cookie } }, "\(subscriber.allLines)")
            }
            #expect(serve.process.standardError.contains("listening there again"), "\(serve.process.standardError)")
        }

        /// Two instances on one cgroup: both hear of the same sockets; the callback flags one sets are
        /// ORed with the other's, so when one stops the other still gets state changes of the sockets
        /// they shared, and new ones.
        @Test(.enabled(if: KernelGate.canRun))
        func twoInstancesOnOneCgroupDoNotDisturbEachOther() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "fault-two")
            defer { cgroup.restore() }
            let listener = try TCPSocket.listener()
            let port = try listener.localPort()
            let arguments = ["watch", "--mode", "bpf", "--cgroup", cgroup.path, "--format", "json",
                             "--when", "acked=bytes_acked > 1000", "--when", "fin=state == FIN_WAIT1", "dport = :\(port)"]
            let first = try CLIProcess(try Self.tcpnotify(), arguments)
            let second = try CLIProcess(try Self.tcpnotify(), arguments)
            for watch in [first, second] {
                #expect(eventually(timeout: commandStartSeconds) { watch.standardError.contains("watching") }, "\(watch.standardError)")
            }
            #expect(try attachedProgramIDs(cgroup: cgroup.path).count == 2)
            let shared = try ConnectedPair.connect(to: listener)
            try transfer(64 << 10, from: shared.client, to: shared.server)
            let sharedCookie = try shared.client.cookie()
            func heard(_ watch: CLIProcess, _ cookie: UInt64, rule: String) -> Bool {
                watch.notifications.contains { $0.cookie == cookie && $0.rules.contains(rule) }
            }
            for watch in [first, second] {
                #expect(eventually(timeout: 5) { heard(watch, sharedCookie, rule: "acked") }, "\(watch.outputLines.map(\.text))")
            }
            first.signal(SIGINT)
            #expect(first.waitForExit() == 0)
            #expect(try attachedProgramIDs(cgroup: cgroup.path).count == 1)
            try shared.client.shutdownWrite() // a state change of a socket both had: needs the state callback
            #expect(eventually(timeout: 5) { heard(second, sharedCookie, rule: "fin") }, "\(second.outputLines.map(\.text))")
            let fresh = try ConnectedPair.connect(to: listener)
            try transfer(64 << 10, from: fresh.client, to: fresh.server)
            let freshCookie = try fresh.client.cookie()
            #expect(eventually(timeout: 5) { heard(second, freshCookie, rule: "acked") }, "\(second.outputLines.map(\.text))")
            second.signal(SIGINT)
            #expect(second.waitForExit() == 0)
        }

        /// `kill -9` of serve, then a restart on the same socket path: nothing is left attached, the
        /// stale socket file does not stop the new daemon, and it serves.
        @Test(.enabled(if: KernelGate.canRun))
        func killNineThenRestart() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "fault-kill9")
            defer { cgroup.restore() }
            let directory = "/tmp/tcpnotify-kill9-\(getpid())"
            mkdir(directory, 0o755)
            defer { _ = try? FileManager.default.removeItem(atPath: directory) }
            let socketPath = directory + "/s.sock"
            let arguments = ["serve", "--mode", "bpf", "--cgroup", cgroup.path, "--socket", socketPath, "--metrics-address", "off"]
            let killed = try CLIProcess(try Self.tcpnotify(), arguments)
            #expect(eventually(timeout: commandStartSeconds) { killed.standardError.contains("serving on") }, "\(killed.standardError)")
            let orphan = try RawSubscriber(socketPath: socketPath)
            try orphan.subscribe(filter: "", rules: ["acked=bytes_acked > 0"])
            killed.signal(SIGKILL)
            _ = killed.waitForExit()
            #expect(FileManager.default.fileExists(atPath: socketPath), "the stale socket file stays")
            #expect(eventually(timeout: 5) { (try? attachedProgramIDs(cgroup: cgroup.path).isEmpty) == true }, "nothing stays attached")
            let restarted = try CLIProcess(try Self.tcpnotify(), arguments)
            defer {
                restarted.signal(SIGTERM)
                _ = restarted.waitForExit()
            }
            #expect(eventually(timeout: commandStartSeconds) { restarted.standardError.contains("serving on") }, "\(restarted.standardError)")
            let server = try LoopbackServer()
            let subscriber = try RawSubscriber(socketPath: socketPath)
            try subscriber.subscribe(filter: "dport = :\(server.port)", rules: ["acked=bytes_acked > 1000"])
            let pair = try server.connect()
            try transfer(64 << 10, from: pair.client, to: pair.server)
            let cookie = try pair.client.cookie()
            #expect(eventually(timeout: 5) { subscriber.notifications.contains { $0.cookie == cookie } }, "\(subscriber.allLines)")
            #expect(try attachedProgramIDs(cgroup: cgroup.path).count == 1)
        }

        /// SIGTERM with clients connected (a subscriber, a connection that never subscribed, an idle
        /// HTTP connection and one that sent half a request head): stopped within a second, exit 0.
        @Test(.enabled(if: KernelGate.canRun))
        func sigtermWithClientsStopsWithinASecond() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "fault-term")
            defer { cgroup.restore() }
            let serve = try ServeProcess(cgroup: cgroup)
            let port = try #require(waitForMetricsPort(serve.process), "\(serve.process.standardError)")
            let subscriber = try RawSubscriber(socketPath: serve.socketPath)
            try subscriber.subscribe(filter: "", rules: ["acked=bytes_acked > 0"])
            let silent = try RawSubscriber(socketPath: serve.socketPath)
            let idleHTTP = try TCPSocket(domain: AF_INET)
            try idleHTTP.connect(SocketAddress("127.0.0.1", port: port))
            let halfHTTP = try TCPSocket(domain: AF_INET)
            try halfHTTP.connect(SocketAddress("127.0.0.1", port: port))
            _ = Array("GET /metrics HTTP/1.1\r\nHost: x\r\n".utf8).withUnsafeBytes { send(halfHTTP.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            usleep(200_000)
            let sent = MonotonicClock.nanoseconds()
            serve.process.signal(SIGTERM)
            let status = serve.process.waitForExit(timeout: 5)
            let seconds = Double(MonotonicClock.nanoseconds() - sent) / 1e9
            #expect(status == 0, "\(serve.process.standardError)")
            #expect(seconds < 1, "stopped \(seconds) s after SIGTERM")
            #expect(eventually { subscriber.ends == 1 && subscriber.isClosed })
            _ = silent
            print("faults: serve with clients stopped \(Int(seconds * 1000)) ms after SIGTERM")
        }
    }
}
