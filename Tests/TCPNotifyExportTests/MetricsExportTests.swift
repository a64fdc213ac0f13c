import Foundation
import Glibc
import TCPNotifyCore
@testable import TCPNotifyExport
import Testing

@Suite struct MetricsExport {
    @Test func notificationsAreCountedByRuleAndTrigger() {
        let metrics = NotificationMetrics()
        metrics.record(sampleNotification(rulesFired: 0b101), ruleNames: ["lossy", "slow", "total_retrans > 16"])
        metrics.record(sampleNotification(rulesFired: 0b001), ruleNames: ["lossy", "slow", "total_retrans > 16"])
        metrics.record(sampleNotification(trigger: .close, rulesFired: 0), ruleNames: ["lossy"])
        let text = metrics.expositionText()
        #expect(sampleValue(text, #"tcpnotify_notifications_total{rule="lossy",trigger="retrans"}"#) == 2)
        #expect(sampleValue(text, #"tcpnotify_notifications_total{rule="total_retrans > 16",trigger="retrans"}"#) == 1)
        #expect(sampleValue(text, #"tcpnotify_notifications_total{rule="",trigger="close"}"#) == 1)
        #expect(text.contains("# TYPE tcpnotify_notifications_total counter"))
        // No connection identity by default: no port, address or cookie anywhere.
        #expect(!text.contains("5201") && !text.contains("127.0.0.2") && !text.contains("cookie"))
    }

    @Test func kernelTotalsBecomeCounterIncrements() {
        let metrics = NotificationMetrics()
        var statistics = WatchStatistics()
        statistics.events = 10
        statistics.enrolled = 5
        statistics.closed = 2
        statistics.ringDrops = 1
        metrics.update(statistics, watchedSockets: statistics.watchedSockets)
        statistics.events = 25
        statistics.sweeps = 3
        metrics.update(statistics, watchedSockets: statistics.watchedSockets)
        metrics.updateKernelRunTime(nanoseconds: 1_500_000_000, count: 40)
        metrics.updateKernelRunTime(nanoseconds: 2_000_000_000, count: 50)
        metrics.recordSubscriberDrops(subscriber: "client-7", count: 3)
        metrics.record(Diagnosis(bottleneck: .receiverWindowLimited, confidence: 0.9, evidence: DiagnosisEvidence(), signals: [], summary: ""))
        let text = metrics.expositionText()
        #expect(sampleValue(text, "tcpnotify_events_total") == 25)
        #expect(sampleValue(text, "tcpnotify_enrolled_total") == 5)
        #expect(sampleValue(text, "tcpnotify_enrolled_sockets") == 3)
        #expect(sampleValue(text, "tcpnotify_ring_drops_total") == 1)
        #expect(sampleValue(text, "tcpnotify_sweeps_total") == 3)
        #expect(sampleValue(text, "tcpnotify_bpf_run_time_seconds_total") == 2.0)
        #expect(sampleValue(text, "tcpnotify_bpf_run_count_total") == 50)
        #expect(sampleValue(text, #"tcpnotify_subscriber_drops_total{subscriber="client-7"}"#) == 3)
        #expect(sampleValue(text, #"tcpnotify_diagnoses_total{bottleneck="receiver-window-limited"}"#) == 1)
        for name in ["tcpnotify_established_total", "tcpnotify_existing_enrolled_total", "tcpnotify_user_drops_total"] {
            #expect(sampleValue(text, name) == 0, "\(name) is exported from the start")
        }
    }

    @Test func optInLabelsAddPortsAndCgroup() {
        let attribution: @Sendable (UInt64) -> CgroupAttribution? = { id in
            id == 4242 ? CgroupAttribution(path: "/system.slice/docker-\(String(repeating: "ab", count: 32)).scope") : nil
        }
        let metrics = NotificationMetrics(labels: [.cgroup, .remotePort, .container], cgroupAttribution: attribution)
        metrics.record(sampleNotification(), ruleNames: ["lossy"])
        metrics.record(sampleNotification(cgroupID: 1), ruleNames: ["lossy"])
        let text = metrics.expositionText()
        let container = String(repeating: "ab", count: 32)
        #expect(sampleValue(text, #"tcpnotify_notifications_total{rule="lossy",trigger="retrans",remote_port="5201",cgroup="/system.slice/docker-\#(container).scope",container="\#(container)"}"#) == 1, "\(text)")
        #expect(sampleValue(text, #"tcpnotify_notifications_total{rule="lossy",trigger="retrans",remote_port="5201",cgroup="unknown",container="unknown"}"#) == 1, "\(text)")
    }

    @Test func labelSetsAreCappedPerMetric() {
        let metrics = NotificationMetrics(labels: [.localPort])
        let extra = 5
        for port in 0..<(NotificationMetrics.maxLabelSetsPerMetric + extra) {
            metrics.record(sampleNotification(localPort: UInt16(port % 65536)), ruleNames: ["r"])
        }
        let text = metrics.expositionText()
        #expect(sampleValue(text, #"tcpnotify_notifications_total{rule="r",trigger="retrans",local_port="other"}"#) == Double(extra))
        #expect(sampleValue(text, "tcpnotify_metrics_label_overflow_total") == Double(extra))
    }

    @Test func labelValuesAreEscaped() {
        let metrics = NotificationMetrics()
        metrics.record(sampleNotification(), ruleNames: ["say \"hi\"\\now"])
        #expect(metrics.expositionText().contains(#"rule="say \"hi\"\\now""#))
    }

    @Test func labelAllowListParses() throws {
        #expect(try MetricsLabel.parseList("cgroup,remote_port") == [.remotePort, .cgroup])
        #expect(try MetricsLabel.parseList(" pod , container,pod ") == [.container, .pod])
        #expect(try MetricsLabel.parseList("") == [])
        for bad in ["remote_ip", "cookie", "cgroup,src", "RULE"] {
            do {
                _ = try MetricsLabel.parseList(bad)
                Issue.record("\(bad) was accepted")
            } catch {
                #expect(error.message.contains("unknown label"), "\(error.message)")
                #expect(error.message.contains("remote_port, local_port, remote_address, cgroup, container, pod"))
            }
        }
    }

    @Test func addressesParse() throws {
        #expect(try MetricsAddress.parse("127.0.0.1:9464") == MetricsAddress(host: "127.0.0.1", port: 9464, isIPv6: false))
        #expect(try MetricsAddress.parse("9000") == MetricsAddress(host: "127.0.0.1", port: 9000, isIPv6: false))
        #expect(try MetricsAddress.parse(":0") == MetricsAddress(host: "127.0.0.1", port: 0, isIPv6: false))
        #expect(try MetricsAddress.parse("[::1]:9464") == MetricsAddress(host: "::1", port: 9464, isIPv6: true))
        #expect(try MetricsAddress.parse("localhost:1") == MetricsAddress(host: "127.0.0.1", port: 1, isIPv6: false))
        for bad in ["", "host:", "127.0.0.1:70000", "example.com:80", "::1:80", "[::1]80", "[::1", "1.2.3.4:-1", "1.2.3.4: 80"] {
            #expect(throws: MetricsOptionError.self, "\(bad)") { try MetricsAddress.parse(bad) }
        }
    }

    @Test func serverAnswersMetricsAnd404() throws {
        let server = try MetricsHTTPServer(
            address: MetricsAddress(host: "127.0.0.1", port: 0, isIPv6: false), limits: .init(headTimeout: .milliseconds(500))
        ) {
            Array("tcpnotify_events_total 7\n".utf8)
        }
        server.start()
        defer { server.stop() }
        #expect(server.address.port != 0)
        let ok = try httpExchange(port: server.address.port, request: "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(ok.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(ok)")
        #expect(ok.contains("Content-Type: text/plain; version=0.0.4"))
        #expect(ok.hasSuffix("\r\n\r\ntcpnotify_events_total 7\n"))
        let query = try httpExchange(port: server.address.port, request: "GET /metrics?x=1 HTTP/1.0\r\n\r\n")
        #expect(query.hasPrefix("HTTP/1.1 200 OK"))
        let missing = try httpExchange(port: server.address.port, request: "GET / HTTP/1.1\r\n\r\n")
        #expect(missing.hasPrefix("HTTP/1.1 404 Not Found"))
        let post = try httpExchange(port: server.address.port, request: "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        #expect(post.hasPrefix("HTTP/1.1 405"))
        let garbage = try httpExchange(port: server.address.port, request: "\u{1}\u{2}garbage\r\n\r\n")
        #expect(garbage.hasPrefix("HTTP/1.1 400"))
        // A client that sends nothing is cut at the head deadline (408) and does not stop the server.
        #expect(try httpExchange(port: server.address.port, request: "").hasPrefix("HTTP/1.1 408"))
        #expect(try httpExchange(port: server.address.port, request: "GET /metrics HTTP/1.1\r\n\r\n").hasPrefix("HTTP/1.1 200"))
    }

    @Test func addressInUseIsReported() throws {
        let first = try MetricsHTTPServer(address: MetricsAddress(host: "127.0.0.1", port: 0, isIPv6: false)) { [] }
        do {
            _ = try MetricsHTTPServer(address: first.address) { [] }
            Issue.record("a second server bound \(first.address)")
        } catch {
            #expect(error.description.contains("in use"), "\(error)")
        }
    }
}

@Suite struct CgroupAttributionTests {
    static let id64 = "4f1c2b3a4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8"

    @Test func containerAndPodNamesAreRecognised() {
        let id = Self.id64
        let cases: [(String, String?, String?)] = [
            ("/system.slice/docker-\(id).scope", id, nil),
            ("/docker/\(id)", id, nil),
            ("/system.slice/containerd.service/kubepods-burstable-pod0f1e2d3c_4b5a_6978_8796_a5b4c3d2e1f0.slice:cri-containerd:\(id)", nil, nil),
            ("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0f1e2d3c_4b5a_6978_8796_a5b4c3d2e1f0.slice/cri-containerd-\(id).scope",
             id, "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"),
            ("/kubepods/besteffort/pod0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0/\(id)", id, "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"),
            ("/machine.slice/libpod-\(id).scope/container", id, nil),
            ("/system.slice/crio-\(id.prefix(12)).scope", String(id.prefix(12)), nil),
            ("/user.slice/user-1000.slice/session-2.scope", nil, nil),
            ("/system.slice/docker.service", nil, nil),
            ("/system.slice/docker-notanid.scope", nil, nil),
            ("/pod0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", nil, nil), // a pod-looking name outside kubepods
            ("/", nil, nil),
            ("", nil, nil),
        ]
        for (path, container, pod) in cases {
            let parsed = ContainerNaming.parse(cgroupPath: path)
            #expect(parsed.container == container, "\(path)")
            #expect(parsed.pod == pod, "\(path)")
        }
    }

    @Test func oddPathsDoNotCrash() {
        for path in ["//", "/kubepods/pod", "/kubepods-pod.slice", "/-pod.slice", "/\u{0}/x", String(repeating: "/a", count: 1000),
                     "/kubepods/pod" + String(repeating: "-", count: 36), "/docker-.scope", "/x.scope.scope"] {
            _ = ContainerNaming.parse(cgroupPath: path)
        }
    }

    @Test func pathsAreResolvedByInodeAndRescannedOnAMiss() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("cgpaths-\(getpid())").path
        try FileManager.default.createDirectory(atPath: root + "/system.slice/docker-\(Self.id64).scope", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        func inode(_ path: String) -> UInt64 {
            var info = stat()
            stat(path, &info)
            return UInt64(info.st_ino)
        }
        let paths = CgroupPaths(mountPoint: root + "/", rescanInterval: .milliseconds(200))
        #expect(paths.path(for: inode(root)) == "/")
        let scope = paths.attribution(for: inode(root + "/system.slice/docker-\(Self.id64).scope"))
        #expect(scope?.path == "/system.slice/docker-\(Self.id64).scope")
        #expect(scope?.container == Self.id64)
        #expect(paths.scanCount == 1)
        // A new directory: unknown until the rate limit allows another walk.
        try FileManager.default.createDirectory(atPath: root + "/late", withIntermediateDirectories: false)
        let late = inode(root + "/late")
        _ = paths.path(for: late) // may or may not be within the interval; then:
        for _ in 0..<100 { _ = paths.path(for: 987_654_321) } // a flood of misses
        #expect(paths.scanCount <= 2, "misses are rate-limited")
        usleep(250_000)
        #expect(paths.path(for: late) == "/late")
    }

    @Test func jsonRecordsCarryTheCgroupPathOnlyWithAResolver() throws {
        var formatter = NotificationFormatter(format: .json, ruleNames: ["r"], realtimeOffsetNanoseconds: 0)
        let before = formatter.jsonLine(for: sampleNotification())
        #expect(!before.contains("\"cgroup\""))
        formatter.cgroupAttribution = { _ in CgroupAttribution(path: "/kubepods/pod0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0/\(Self.id64)") }
        let line = formatter.jsonLine(for: sampleNotification())
        let notification = try Wire.decode(Wire.Notification.self, from: line)
        #expect(notification.cgroup == "/kubepods/pod0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0/\(Self.id64)")
        #expect(notification.container == Self.id64)
        #expect(notification.pod == "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")
        #expect(notification.cgroupID == 4242)
        #expect(try Wire.decode(Wire.Notification.self, from: before).cgroup == nil)
        // The keys before stay as they were, in the same order.
        #expect(line.replacingOccurrences(of: #","cgroup":"/kubepods/pod0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0/\#(Self.id64)","container":"\#(Self.id64)","pod":"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0""#, with: "") == before)
    }
}
