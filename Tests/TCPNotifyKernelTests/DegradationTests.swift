import Foundation
import Glibc
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyLab
import Testing

/// Sets `TCPNOTIFY_REFUSE_PROGRAMS` for the loads `body` makes (the suites run one test at a time).
private func refusing<T>(_ programs: String, _ body: () throws -> T) rethrows -> T {
    setenv("TCPNOTIFY_REFUSE_PROGRAMS", programs, 1)
    defer { unsetenv("TCPNOTIFY_REFUSE_PROGRAMS") }
    return try body()
}

extension KernelSuite {
    /// Every optional program can be refused by a host (lockdown, an LSM, a kernel build): push keeps
    /// running, the refusal is named, and the fallback does the job. `TCPNOTIFY_REFUSE_PROGRAMS` makes the
    /// loader treat a program as refused (EPERM, empty log), so each path runs on any host.
    @Suite struct Degradation {
        /// Without the sk_storage map iterator the sweep walks each namespace with iter/tcp: a stall rule
        /// still fires from the sweep, and the degradation names the program and the errno. RTOs come at
        /// about 0.2, 0.6, 1.4, 3.0 and 6.2 s: the 3.5 s threshold falls between the last two, so only a
        /// sweep sees it first.
        @Test(.enabled(if: KernelGate.canRun))
        func stallRuleFiresWithoutTheMapIterator() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "degraded-sweep")
            defer { cgroup.restore() }
            let lab = try NetworkLab()
            defer { lab.shutdown() }
            let connection = try LabConnection(across: lab)
            let port = try connection.listener.localPort()
            try refusing("sweep_enrolled") {
                let harness = try WatchHarness(
                    cgroupPath: cgroup.path, filter: "dport = :\(port)", rules: ["stall=last_ack_recv > 3500ms and unacked > 0"])
                let found = try harness.program.prepareSweep()
                let degradation = try #require(found.first { $0.program == "sweep_enrolled" }, "\(found)")
                #expect(degradation.reason.contains("Operation not permitted"), "\(degradation.reason)")
                #expect(degradation.replacement?.contains("sweep_sockets") == true)
                #expect(!harness.program.isAvailable(.sweepMap))
                #expect(try harness.program.enrollExisting(in: NetworkNamespaces.all()).enrolled == 1)
                try transfer(64 << 10, from: connection.client, to: connection.server)
                try lab.setLoss(.deadPath, toward: .server)
                defer { try? lab.clearLoss(toward: .server) }
                _ = connection.client.fillWithoutBlocking()
                let cookie = try connection.client.cookie()
                let start = Date()
                while Date().timeIntervalSince(start) < 7, harness.notifications(cookie: cookie).isEmpty {
                    try harness.program.sweep()
                    usleep(100_000)
                }
                let stall = try #require(harness.notifications(cookie: cookie).first, "the stall rule fired within 7 s")
                #expect(stall.trigger == .sweep)
                #expect(stall.info[.lastAckRecv] >= 3500 && stall.info[.lastAckRecv] < 6000)
            }
        }

        /// Without either sweep, preparing one fails with the reason and both refusals are reported.
        @Test(.enabled(if: KernelGate.canRun))
        func noSweepAtAllIsReported() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "degraded-nosweep")
            defer { cgroup.restore() }
            try refusing("sweep_enrolled,sweep_sockets") {
                let harness = try WatchHarness(cgroupPath: cgroup.path, rules: ["stall=last_ack_recv > 5s"])
                #expect(throws: BPFError.self) { try harness.program.prepareSweep() }
                #expect(Set(harness.program.degradations.map(\.program)) == ["sweep_enrolled", "sweep_sockets"])
            }
        }

        /// `watch` as a user runs it on a host refusing the map iterator: push runs (a record from an RTT
        /// callback, not a poll), stderr names the refused program and errno, says nothing of privileges,
        /// and the final stats line lists what is off.
        @Test(.enabled(if: KernelGate.canRun))
        func watchNamesTheRefusedProgramAndStillPushes() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "degraded-cli")
            defer { cgroup.restore() }
            let listener = try TCPSocket.listener()
            let port = try listener.localPort()
            let watch = try CLIProcess(
                builtProduct("tcpnotify", environmentOverride: "TCPNOTIFY_BIN"),
                ["watch", "--mode", "auto", "--cgroup", cgroup.path, "--format", "json",
                 "--when", "acked=bytes_acked > 1000", "--when", "stall=last_ack_recv > 1h", "dport = :\(port)"],
                environment: ["TCPNOTIFY_REFUSE_PROGRAMS": "sweep_enrolled"])
            #expect(eventually(timeout: commandStartSeconds) { watch.standardError.contains("watching cgroup") }, "\(watch.standardError)")
            #expect(eventually(timeout: 5) { watch.standardError.contains("sweep_enrolled") }, "\(watch.standardError)")
            let pair = try ConnectedPair.connect(to: listener)
            try transfer(64 << 10, from: pair.client, to: pair.server)
            let cookie = try pair.client.cookie()
            let record = eventually(timeout: 5) {
                watch.notifications.contains { $0.cookie == cookie }
            }
            #expect(record, "\(watch.outputLines.map(\.text))")
            let line = watch.notifications.first { $0.cookie == cookie }
            #expect(line?.trigger == .rtt, "pushed at an RTT callback: \(String(describing: line))")
            watch.signal(SIGINT)
            #expect(watch.waitForExit() == 0)
            let stderr = watch.standardError
            #expect(stderr.contains("Operation not permitted (errno 1)"), "\(stderr)")
            #expect(stderr.contains("sweep_sockets"), "the replacement is named: \(stderr)")
            #expect(!stderr.contains("permission denied"), "a refusal is not a privilege problem: \(stderr)")
            #expect(!stderr.contains("polling"), "\(stderr)")
            let stats = watch.finalStats
            #expect(stats?.degraded?.contains { $0.program == "sweep_enrolled" } == true, "\(String(describing: stats))")
        }

        /// The core program refused: `--mode auto` polls, and says which program was refused and why,
        /// not that privileges are missing; the rule still fires through polling.
        @Test(.enabled(if: KernelGate.canRun))
        func refusedCoreProgramFallsBackToPolling() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "degraded-core")
            defer { cgroup.restore() }
            let listener = try TCPSocket.listener()
            let port = try listener.localPort()
            let watch = try CLIProcess(
                builtProduct("tcpnotify", environmentOverride: "TCPNOTIFY_BIN"),
                ["watch", "--mode", "auto", "--interval", "100ms", "--cgroup", cgroup.path, "--format", "json",
                 "--when", "acked=bytes_acked > 1000", "dport = :\(port)"],
                environment: ["TCPNOTIFY_REFUSE_PROGRAMS": "sockops_main"])
            #expect(eventually(timeout: commandStartSeconds) { watch.standardError.contains("polling") }, "\(watch.standardError)")
            let pair = try ConnectedPair.connect(to: listener)
            try transfer(64 << 10, from: pair.client, to: pair.server)
            let cookie = try pair.client.cookie()
            #expect(eventually(timeout: 5) {
                watch.notifications.contains { $0.cookie == cookie }
            }, "\(watch.outputLines.map(\.text))")
            watch.signal(SIGINT)
            _ = watch.waitForExit()
            let stderr = watch.standardError
            #expect(stderr.contains("refused BPF program 'sockops_main'"), "\(stderr)")
            #expect(!stderr.contains("permission denied"), "\(stderr)")
        }

        /// The enrollment iterator refused: new connections are still pushed; the degradation says
        /// existing ones are not watched.
        @Test(.enabled(if: KernelGate.canRun))
        func refusedEnrollmentStillWatchesNewConnections() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "degraded-enroll")
            defer { cgroup.restore() }
            try refusing("enroll_existing") {
                let old = try ConnectedPair.make()
                let harness = try WatchHarness(cgroupPath: cgroup.path, filter: "src 127.0.0.1", rules: ["acked=bytes_acked > 1000"])
                #expect(throws: BPFError.self) { try harness.program.enrollExisting(in: NetworkNamespaces.all()) }
                let degradation = harness.program.degradations.first { $0.program == "enroll_existing" }
                #expect(degradation?.lost.contains("before the start") == true, "\(harness.program.degradations)")
                let new = try ConnectedPair.make()
                try transfer(64 << 10, from: new.client, to: new.server)
                try transfer(64 << 10, from: old.client, to: old.server)
                let newCookie = try new.client.cookie(), oldCookie = try old.client.cookie()
                #expect(harness.waitFor { $0.cookie == newCookie } != nil, "a new connection is pushed")
                #expect(harness.notifications(cookie: oldCookie).isEmpty, "an existing one is not enrolled")
            }
        }

        /// Before 6.12 an iterator cannot switch a socket's callbacks on: the enrolled existing sockets are
        /// watched by tcp_probe (rules at incoming segments) and inet_sock_set_state (state changes and the
        /// final record at close). Forced here on any kernel.
        @Test(.enabled(if: KernelGate.canRun))
        func existingSocketsWithoutCallbacksAreWatchedByTracepoints() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "degraded-tracepoints")
            defer { cgroup.restore() }
            try refusing("cb_flags_from_iterator") {
                let pair = try ConnectedPair.make()
                let port = try pair.listener.localPort()
                let harness = try WatchHarness(
                    cgroupPath: cgroup.path, filter: "dport = :\(port)",
                    rules: ["acked=bytes_acked > 100000", "stale=last_ack_recv > 1s and unacked > 0"])
                #expect(harness.program.eventCoverage == .sockOpsCallbacks)
                let result = try harness.program.enrollExisting(in: NetworkNamespaces.all())
                #expect(result.enrolled == 1 && result.viaTracepoints == 1, "\(result)")
                // No RTO callback for it: a retransmits rule goes back to the 10 s sweep.
                #expect(harness.program.eventCoverage == .none)
                // tcp_probe runs before the segment is processed: after 1.2 s of silence, the first ACK of
                // the transfer must count as received now, or `stale` would fire on a healthy flow.
                usleep(1_200_000)
                let degradation = harness.program.degradations.first { $0.program == "enroll_existing" }
                #expect(degradation?.replacement?.contains("tcp_probe") == true, "\(harness.program.degradations)")
                let cookie = try pair.client.cookie()
                #expect(try pair.client.tcpInfo()[.bytesAcked] < 100000)
                try transfer(1 << 20, from: pair.client, to: pair.server)
                let fired = harness.waitFor { $0.cookie == cookie && $0.rulesFired != 0 }
                #expect(fired?.trigger == .segment, "checked at an incoming segment: \(String(describing: fired))")
                #expect((fired?.info[.bytesAcked] ?? 0) > 100000)
                let staleIndex = try #require(harness.ruleIndex("stale"))
                let stale = harness.notifications(cookie: cookie).filter { $0.firedRuleIndices.contains(staleIndex) }
                #expect(stale.isEmpty, "a healthy flow after silence is not a stall: \(stale.map { $0.info[.lastAckRecv] })")
                try pair.client.shutdownWrite()
                try pair.server.shutdownWrite()
                let closing = harness.waitFor { $0.cookie == cookie && ($0.trigger == .state || $0.trigger == .close) }
                #expect(closing != nil, "a state change of a tracepoint-watched socket is checked")
                let statistics = try harness.program.kernelStatistics()
                #expect(statistics.viaTracepoints == 1)
            }
        }
    }
}

extension KernelSuite {
    /// Host layouts: a hybrid host (cgroup v1 controllers under a tmpfs at /sys/fs/cgroup, cgroup2 at
    /// /sys/fs/cgroup/unified), laid out in a private mount namespace so that this runs on any host.
    @Suite struct HostLayout {
        @Test(.enabled(if: KernelGate.canRun))
        func hybridCgroupLayoutWorks() throws {
            try KernelGate.require()
            let tcpnotify = try builtProduct("tcpnotify", environmentOverride: "TCPNOTIFY_BIN")
            let script = """
                set -e
                mount -t tmpfs tmpfs /sys/fs/cgroup
                mkdir -p /sys/fs/cgroup/unified /sys/fs/cgroup/tcpnotify-v1
                mount -t cgroup2 none /sys/fs/cgroup/unified
                mount -t cgroup -o none,name=tcpnotifytest cgroup /sys/fs/cgroup/tcpnotify-v1
                "$1" doctor --format json --no-connection > /tmp/tcpnotify-hybrid-doctor.$$
                cat /tmp/tcpnotify-hybrid-doctor.$$; rm -f /tmp/tcpnotify-hybrid-doctor.$$
                "$1" watch --mode bpf --duration 1 --when 'never=rtt > 1h' --format json
                """
            let result = try Subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", tcpnotify])
            #expect(result.status == 0, "stdout: \(result.stdout)\nstderr: \(result.stderr)")
            let lines = result.stdout.split(separator: "\n").map(String.init)
            let doctor = try Wire.decodeValue(Wire.DoctorReport.self, from: Array((lines.first ?? "").utf8))
            #expect(doctor.checks.contains { $0.detail.contains("/sys/fs/cgroup/unified (hybrid host") }, "doctor: \(result.stdout)")
            #expect(result.stderr.contains("watching cgroup /sys/fs/cgroup/unified"), "\(result.stderr)")
            #expect(lines.contains { decodedLine(Wire.Stats.self, from: $0) != nil }, "\(result.stdout)")
        }
    }
}
