import Foundation
import Glibc
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyLab
import Testing

extension KernelSuite {
    /// Sockets established before tcpnotify started, the periodic sweep, and the snapshot.
    @Suite struct ExistingSockets {
        /// Connections made before the attachment are enrolled by the iterator: exactly the ones the
        /// filter selects, within the attach point's cgroup, and they then notify at TCP events.
        @Test(.enabled(if: KernelGate.canRun))
        func enrollsExistingSocketsInTheRootNamespace() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "existing")
            defer { cgroup.restore() }
            let selected = try (0..<20).map { _ in try ConnectedPair.make() }
            let more = try (0..<10).map { _ in try ConnectedPair.make(serverPort: 0) }
            // Each pair has its own listener: select the first 20 clients by their server ports.
            let ports = try selected.map { try $0.listener.localPort() }
            let filter = ports.map { "dport = :\($0)" }.joined(separator: " or ")
            let harness = try WatchHarness(cgroupPath: cgroup.path, filter: filter, rules: ["acked=bytes_acked > 1000"])
            let result = try harness.program.enrollExisting(in: NetworkNamespaces.all())
            #expect(result.enrolled == 20, "20 selected clients existed before the start; enrolled \(result.enrolled)")
            #expect(result.failures.isEmpty, "\(result.failures)")
            print("existing sockets: enrolled \(result.enrolled) of \(result.visited) visited in \(result.namespaces) namespaces, "
                  + String(format: "%.2f ms", Double(result.elapsedNanoseconds) / 1e6))

            // The callback flags were set: data on an enrolled connection notifies, on the others not.
            try transfer(64 << 10, from: selected[3].client, to: selected[3].server)
            try transfer(64 << 10, from: more[0].client, to: more[0].server)
            let cookie = try selected[3].client.cookie()
            let notified = harness.waitFor { $0.cookie == cookie }
            // Before 6.12 the kernel will not set callbacks from an iterator: the tracepoints watch the socket.
            if result.viaTracepoints > 0 {
                #expect(KernelInfo.isOlder(than: "6.12"), "only kernels before 6.12 refuse callback flags from an iterator")
                #expect(notified?.trigger == .segment, "an existing socket notifies at an incoming segment")
            } else {
                #expect(notified?.trigger == .rtt, "an existing socket notifies at its RTT callback")
            }
            #expect(harness.notifications.allSatisfy { ports.contains($0.remote.port) })
            // Enrolling twice enrolls nothing new.
            let again = try harness.program.enrollExisting(in: NetworkNamespaces.all())
            #expect(again.enrolled == 0)
        }

        /// With no filter, the attach point's cgroup bounds the enrollment: every socket of this test's
        /// cgroup (both ends of each pair) and none of the host's other sockets.
        @Test(.enabled(if: KernelGate.canRun))
        func enrollmentStaysInsideTheAttachPointsCgroup() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "existing-scope")
            defer { cgroup.restore() }
            let pairs = try (0..<8).map { _ in try ConnectedPair.make() }
            let harness = try WatchHarness(cgroupPath: cgroup.path, rules: ["never=rtt > 1h"])
            let result = try harness.program.enrollExisting(in: NetworkNamespaces.all())
            #expect(result.enrolled == UInt64(pairs.count * 2), "both ends of \(pairs.count) pairs; got \(result.enrolled)")
        }

        /// `tcpnotify watch` as a user runs it: it reports the enrollment, and an existing connection
        /// notifies; the final stats line counts it.
        @Test(.enabled(if: KernelGate.canRun))
        func watchEnrollsExistingConnections() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "existing-cli")
            defer { cgroup.restore() }
            let pair = try ConnectedPair.make()
            let port = try pair.listener.localPort()
            let watch = try CLIProcess(
                builtProduct("tcpnotify", environmentOverride: "TCPNOTIFY_BIN"),
                ["watch", "--cgroup", cgroup.path, "--format", "json", "--when", "bytes_acked > 1000", "dport = :\(port)"])
            let enrolled = eventually(timeout: commandStartSeconds) { watch.standardError.contains("enrolled 1 existing socket(s)") }
            #expect(enrolled, "\(watch.standardError)")
            try transfer(64 << 10, from: pair.client, to: pair.server)
            let cookie = try pair.client.cookie()
            let notified = eventually {
                watch.notifications.contains { $0.cookie == cookie }
            }
            #expect(notified, "\(watch.outputLines.map(\.text))")
            watch.signal(SIGINT)
            #expect(watch.waitForExit() == 0)
            let stats = watch.finalStats
            #expect(stats?.existingEnrolled == 1, "\(String(describing: stats))")
        }

        /// iter/tcp sees one network namespace at a time: a connection living in the lab's namespaces is
        /// enrolled because every namespace is visited.
        @Test(.enabled(if: KernelGate.canRun))
        func enrollsExistingSocketsInAnotherNamespace() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "existing-netns")
            defer { cgroup.restore() }
            let lab = try NetworkLab()
            defer { lab.shutdown() }
            let connection = try LabConnection(across: lab)
            let port = try connection.listener.localPort()
            let harness = try WatchHarness(
                cgroupPath: cgroup.path, filter: "dport = :\(port) or sport = :\(port)", rules: ["acked=bytes_acked > 1000"])
            let namespaces = NetworkNamespaces.all()
            #expect(namespaces.contains { $0.path.hasSuffix(lab.clientNamespace) })
            let result = try harness.program.enrollExisting(in: namespaces)
            #expect(result.enrolled == 2, "client (client namespace) and server (server namespace); got \(result.enrolled)")
            try transfer(256 << 10, from: connection.client, to: connection.server)
            let cookie = try connection.client.cookie()
            #expect(harness.waitFor { $0.cookie == cookie } != nil, "the client in the lab namespace notifies")
        }

        /// A peer that stops answering (every packet dropped by cls_bpf): no ACK arrives, and between
        /// RTOs no callback runs. The sweep sees `last_ack_recv` pass the threshold. RTOs come at about
        /// 0.2, 0.6, 1.4, 3.0 and 6.2 s; the 3.5 s threshold falls between the last two, so only the
        /// sweep (every 100 ms here) can notice it first. The 3 s gap leaves room for a slow machine (a
        /// qemu guest without KVM sweeps about once a second).
        @Test(.enabled(if: KernelGate.canRun))
        func stallRuleFiresFromTheSweep() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "stall")
            defer { cgroup.restore() }
            let lab = try NetworkLab()
            defer { lab.shutdown() }
            let connection = try LabConnection(across: lab)
            let port = try connection.listener.localPort()
            let harness = try WatchHarness(
                cgroupPath: cgroup.path, filter: "dport = :\(port)", rules: ["stall=last_ack_recv > 3500ms and unacked > 0"])
            #expect(harness.program.rules.needsSweep)
            #expect(try harness.program.enrollExisting(in: NetworkNamespaces.all()).enrolled == 1)
            try transfer(64 << 10, from: connection.client, to: connection.server)
            try lab.setLoss(.deadPath, toward: .server)
            let start = Date()
            _ = connection.client.fillWithoutBlocking()
            let cookie = try connection.client.cookie()
            var sweeps = 0
            while Date().timeIntervalSince(start) < 7, harness.notifications(cookie: cookie).isEmpty {
                try harness.program.sweep()
                sweeps += 1
                usleep(100_000)
            }
            let statisticsNow = try harness.program.kernelStatistics()
            let lastAckNow = try connection.client.tcpInfo()[.lastAckRecv]
            let stall = try #require(
                harness.notifications(cookie: cookie).first,
                "the stall rule fired within 7 s: \(sweeps) sweeps, \(statisticsNow), now \(lastAckNow) ms since the last ACK")
            let seconds = Date().timeIntervalSince(start)
            #expect(stall.trigger == .sweep, "found by the sweep, not at a TCP event (\(stall.trigger))")
            #expect(stall.info[.lastAckRecv] >= 3500 && stall.info[.lastAckRecv] < 6000, "last_ack_recv \(stall.info[.lastAckRecv]) ms")
            #expect(stall.info[.unacked] > 0)
            let statistics = try harness.program.kernelStatistics()
            // Only enrolled sockets are swept: this test enrolled one.
            #expect(statistics.sweepChecks <= UInt64(sweeps), "\(statistics.sweepChecks) checks in \(sweeps) sweeps")
            print("stall: notified by the sweep after \(String(format: "%.2f", seconds)) s, last_ack_recv \(stall.info[.lastAckRecv]) ms, "
                  + "\(statistics.sweepChecks) checks in \(sweeps) sweeps")
            try lab.clearLoss(toward: .server)
        }

        /// The snapshot's records equal `getsockopt(TCP_INFO)` field by field on idle sockets (time
        /// fields within the time between the two reads), in the root namespace and in a lab namespace.
        @Test(.enabled(if: KernelGate.canRun))
        func snapshotMatchesGetsockopt() throws {
            try KernelGate.require()
            let lab = try NetworkLab()
            defer { lab.shutdown() }
            let loopback = try ConnectedPair.make()
            let loopback6 = try ConnectedPair.make(family: .ipv6)
            let across = try LabConnection(across: lab)
            try transfer(128 << 10, from: loopback.client, to: loopback.server)
            try transfer(128 << 10, from: loopback6.server, to: loopback6.client)
            try transfer(128 << 10, from: across.client, to: across.server)
            usleep(50_000)  // let delayed ACKs go out: idle sockets
            let sockets = [loopback.client, loopback.server, loopback6.client, loopback6.server, across.client, across.server]
            let ports = try [loopback.listener, loopback6.listener, across.listener].map { try $0.localPort() }
            let filter = ports.map { "dport = :\($0) or sport = :\($0)" }.joined(separator: " or ")
            let program = try TCPNotifyProgram(
                configuration: WatchConfiguration(filter: try FilterExpression.compile(filter), rules: try RuleExpression.compile([])),
                purpose: .snapshot)
            let expected = try sockets.map { (cookie: try $0.cookie(), info: try $0.tcpInfo()) }
            let before = Date()
            let snapshot = try program.snapshot(in: NetworkNamespaces.all())
            let elapsedMilliseconds = UInt64(Date().timeIntervalSince(before) * 1000) + 20
            #expect(snapshot.failures.isEmpty)
            #expect(snapshot.sockets.count == sockets.count, "\(snapshot.sockets.count) records for \(sockets.count) sockets")
            var compared = 0
            for (cookie, info) in expected {
                let record = try #require(snapshot.sockets.first { $0.socket.cookie == cookie }, "cookie \(cookie) in the snapshot")
                #expect(record.socket.trigger == .snapshot)
                for field in KernelInfo.tcpInfoFields.present {
                    let want = info[field], got = record.socket.info[field]
                    if SnapshotComparison.timeFields.contains(field) {
                        #expect(got >= want && got <= want + elapsedMilliseconds, "\(field.name): snapshot \(got), getsockopt \(want)")
                    } else {
                        #expect(got == want, "\(field.name): snapshot \(got), getsockopt \(want)")
                    }
                    compared += 1
                }
            }
            print("snapshot vs getsockopt: \(compared) fields of \(expected.count) sockets compared")
        }

        /// The snapshot agrees with `ss -ti` (iproute2's own reading of sock_diag) on the fields ss prints.
        @Test(.enabled(if: KernelGate.canRun))
        func snapshotAgreesWithSS() throws {
            try KernelGate.require()
            let pairs = try (0..<4).map { _ in try ConnectedPair.make() } + [try ConnectedPair.make(family: .ipv6)]
            for pair in pairs { try transfer(256 << 10, from: pair.client, to: pair.server) }
            usleep(50_000)
            let ports = try pairs.map { try $0.listener.localPort() }
            let filter = ports.map { "dport = :\($0) or sport = :\($0)" }.joined(separator: " or ")
            // The command itself, as a user runs it, right after ss. The time fields may differ by everything
            // from ss's start to the snapshot's end (under load ss alone took longer than the snapshot).
            let tcpnotify = try builtProduct("tcpnotify", environmentOverride: "TCPNOTIFY_BIN")
            let before = Date()
            let ssOutput = try Subprocess.run(["ss", "-tinH", "state", "established", filter]).checked().stdout
            let snapshotOutput = try Subprocess.run([tcpnotify, "snapshot", "--own-namespace", "--format", "json", filter]).checked()
            let snapshotMilliseconds = Date().timeIntervalSince(before) * 1000 + 10
            let records = try snapshotOutput.stdout.split(separator: "\n").map { try Wire.decode(Wire.Snapshot.self, from: $0) }
            let ssSockets = SSOutput.parse(ssOutput)
            #expect(ssSockets.count == pairs.count * 2, "ss listed \(ssSockets.count) sockets:\n\(ssOutput)")
            #expect(records.count == pairs.count * 2, "snapshot printed \(records.count) records; stderr: \(snapshotOutput.stderr)")
            var compared = 0
            for ss in ssSockets {
                let record = try #require(
                    records.first { $0.src == ss.local && $0.dst == ss.remote },
                    "\(ss.local) -> \(ss.remote) in the snapshot")
                let parsed = record.tcpInfo.info
                for (key, value) in ss.values {
                    guard let check = SSOutput.checks[key] else { continue }
                    let ours = check.value(parsed)
                    if SSOutput.timeKeys.contains(key) {
                        // ss ran first: the snapshot reads the same clock later, by at most both run times.
                        #expect(ours >= value && ours <= value + snapshotMilliseconds, "\(ss.local)->\(ss.remote) \(key): ss \(value), snapshot \(ours)")
                        compared += 1
                        continue
                    }
                    #expect(abs(ours - value) <= check.tolerance, "\(ss.local)->\(ss.remote) \(key): ss \(value), snapshot \(ours)")
                    compared += 1
                }
            }
            #expect(compared >= ssSockets.count * 15, "compared \(compared) values")
            print("snapshot vs ss -ti: \(compared) values of \(ssSockets.count) sockets compared")
        }
    }
}

enum SnapshotComparison {
    /// Fields that grow with the time between two reads (milliseconds since an event).
    static let timeFields: Set<TCPInfoField> = [.lastDataSent, .lastAckSent, .lastDataRecv, .lastAckRecv]
}

/// `ss -tinH` output: one socket per two lines (endpoints, then key:value details).
struct SSOutput {
    let local: String
    let remote: String
    var values: [String: Double]

    struct Check: Sendable {
        let value: @Sendable (TCPInfo) -> Double
        let tolerance: Double
    }

    /// ss's key → the same quantity from tcp_info, in ss's units, with the rounding ss applies.
    static let checks: [String: Check] = [
        "rto": Check(value: { Double($0[.rto]) / 1000 }, tolerance: 0.001),
        "rtt": Check(value: { Double($0[.rtt]) / 1000 }, tolerance: 0.0005),
        "rttvar": Check(value: { Double($0[.rttvar]) / 1000 }, tolerance: 0.0005),
        "mss": Check(value: { Double($0[.sndMss]) }, tolerance: 0),
        "pmtu": Check(value: { Double($0[.pmtu]) }, tolerance: 0),
        "rcvmss": Check(value: { Double($0[.rcvMss]) }, tolerance: 0),
        "advmss": Check(value: { Double($0[.advmss]) }, tolerance: 0),
        "cwnd": Check(value: { Double($0[.sndCwnd]) }, tolerance: 0),
        "bytes_sent": Check(value: { Double($0[.bytesSent]) }, tolerance: 0),
        "bytes_acked": Check(value: { Double($0[.bytesAcked]) }, tolerance: 0),
        "bytes_received": Check(value: { Double($0[.bytesReceived]) }, tolerance: 0),
        "segs_out": Check(value: { Double($0[.segsOut]) }, tolerance: 0),
        "segs_in": Check(value: { Double($0[.segsIn]) }, tolerance: 0),
        "data_segs_out": Check(value: { Double($0[.dataSegsOut]) }, tolerance: 0),
        "data_segs_in": Check(value: { Double($0[.dataSegsIn]) }, tolerance: 0),
        "lastsnd": Check(value: { Double($0[.lastDataSent]) }, tolerance: 0),
        "lastrcv": Check(value: { Double($0[.lastDataRecv]) }, tolerance: 0),
        "lastack": Check(value: { Double($0[.lastAckRecv]) }, tolerance: 0),
        "delivered": Check(value: { Double($0[.delivered]) }, tolerance: 0),
        "rcv_space": Check(value: { Double($0[.rcvSpace]) }, tolerance: 0),
        "rcv_ssthresh": Check(value: { Double($0[.rcvSsthresh]) }, tolerance: 0),
        "minrtt": Check(value: { Double($0[.minRtt]) / 1000 }, tolerance: 0.0005),
        "snd_wnd": Check(value: { Double($0[.sndWnd]) }, tolerance: 0),
        "rcv_wnd": Check(value: { Double($0[.rcvWnd]) }, tolerance: 0),
        "reordering": Check(value: { Double($0[.reordering]) }, tolerance: 0),
        "busy": Check(value: { Double($0[.busyTime]) / 1000 }, tolerance: 1),
        "delivery_rate": Check(value: { Double($0[.deliveryRate]) * 8 }, tolerance: 1),
        "pacing_rate": Check(value: { Double($0[.pacingRate]) * 8 }, tolerance: 1),
    ]

    /// Milliseconds since an event: they grow between the ss run and the snapshot.
    static let timeKeys: Set<String> = ["lastsnd", "lastrcv", "lastack"]

    static func parse(_ text: String) -> [SSOutput] {
        var sockets: [SSOutput] = []
        let lines = text.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
        var index = 0
        while index < lines.count {
            let columns = lines[index].split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            index += 1
            // Recv-Q Send-Q Local Peer (state omitted by `state established`, header by -H).
            guard columns.count >= 4 else { continue }
            var socket = SSOutput(local: columns[2], remote: columns[3], values: [:])
            if index < lines.count, lines[index].hasPrefix("\t") || lines[index].hasPrefix(" ") {
                socket.values = details(lines[index])
                index += 1
            }
            sockets.append(socket)
        }
        return sockets
    }

    /// `rtt:0.023/0.013` → rtt, rttvar; `pacing_rate 287904345936bps` → pacing_rate; `key:value` pairs.
    static func details(_ line: String) -> [String: Double] {
        var values: [String: Double] = [:]
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        var index = 0
        while index < words.count {
            let word = words[index]
            index += 1
            if (word == "pacing_rate" || word == "delivery_rate"), index < words.count, words[index].hasSuffix("bps") {
                values[word] = Double(words[index].dropLast(3))
                index += 1
                continue
            }
            guard let colon = word.firstIndex(of: ":") else { continue }
            let key = String(word[..<colon])
            let value = String(word[word.index(after: colon)...])
            if key == "rtt" {
                let parts = value.split(separator: "/")
                if parts.count == 2 { values["rtt"] = Double(parts[0]); values["rttvar"] = Double(parts[1]) }
            } else if key == "busy" {
                values[key] = Double(value.hasSuffix("ms") ? String(value.dropLast(2)) : value)
            } else if let number = Double(value) {
                values[key] = number
            }
        }
        return values
    }
}
