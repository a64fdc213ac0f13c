import Foundation
import Glibc
import TCPNotifyCore
import TCPNotifyLab
import Testing

extension KernelSuite {
    /// `watch --metrics-address`: a real Prometheus scrapes it; cgroup paths in the JSON records; bad options.
    @Suite struct Metrics {
        static func tcpnotify() throws -> String { try builtProduct("tcpnotify", environmentOverride: "TCPNOTIFY_BIN") }

        /// Prometheus (Debian's package) scrapes `/metrics` every second; loopback traffic trips a rule; the
        /// test asks Prometheus' HTTP API until the notification counter has moved.
        @Test(.enabled(if: KernelGate.canRun(needing: ["prometheus"])))
        func prometheusScrapesTheNotificationCounter() throws {
            try KernelGate.require(needing: ["prometheus"])
            let cgroup = try TestCgroup(name: "metrics-prometheus")
            defer { cgroup.restore() }
            let serverPort = try freeLoopbackPort()
            let watch = try CLIProcess(Self.tcpnotify(), [
                "watch", "sport = :\(serverPort) or dport = :\(serverPort)", "--cgroup", cgroup.path, "--format", "json",
                "--when", "metrics_fin=state == FIN_WAIT1", "--metrics-address", "127.0.0.1:0",
            ])
            defer { watch.signal(SIGINT); _ = watch.waitForExit() }
            let metricsPort = try #require(waitForMetricsPort(watch), "no metrics address: \(watch.standardError)")
            #expect(eventually(timeout: commandStartSeconds) { watch.standardError.contains("watching") }, "\(watch.standardError)")

            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tcpnotify-prometheus-\(getpid())").path
            try FileManager.default.createDirectory(atPath: directory + "/data", withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try """
                global:
                  scrape_interval: 1s
                  evaluation_interval: 1s
                scrape_configs:
                  - job_name: tcpnotify
                    scrape_interval: 1s
                    scrape_timeout: 1s
                    static_configs:
                      - targets: ['127.0.0.1:\(metricsPort)']
                """.write(toFile: directory + "/prometheus.yml", atomically: true, encoding: .utf8)
            let prometheusPort = try freeLoopbackPort()
            let prometheus = try CLIProcess(Prometheus.binary, [
                "--config.file=\(directory)/prometheus.yml", "--storage.tsdb.path=\(directory)/data",
                "--web.listen-address=127.0.0.1:\(prometheusPort)", "--log.level=warn",
            ])
            defer { prometheus.signal(SIGTERM); _ = prometheus.waitForExit(timeout: 10) }

            // Traffic that trips the rule: the client's shutdown() enters FIN_WAIT1.
            let pair = try ConnectedPair.make(serverPort: serverPort)
            try pair.client.shutdownWrite()
            #expect(eventually(timeout: 10) { !watch.notifications.isEmpty },
                    "no notification: \(watch.outputLines.map(\.text))")

            var last = ""
            let scraped = eventually(timeout: 60) {
                last = (try? Prometheus.query(port: prometheusPort, #"tcpnotify_notifications_total{rule="metrics_fin"}"#)) ?? last
                if (Prometheus.values(last).max() ?? 0) > 0 { return true }
                usleep(500_000)
                return false
            }
            #expect(scraped, "Prometheus never saw the counter move: \(last); prometheus stderr: \(prometheus.standardError.suffix(2000))")
            // A kernel counter went through the same path.
            let events = try Prometheus.query(port: prometheusPort, "tcpnotify_events_total")
            #expect((Prometheus.values(events).max() ?? 0) > 0, "\(events)")
            let up = try Prometheus.query(port: prometheusPort, #"up{job="tcpnotify"}"#)
            #expect(Prometheus.values(up) == [1], "\(up)")
        }

        /// Every JSON record names the socket's cgroup by path (relative to the cgroup2 mount).
        @Test(.enabled(if: KernelGate.canRun))
        func jsonRecordsCarryTheCgroupPath() throws {
            try KernelGate.require()
            let cgroup = try TestCgroup(name: "metrics-cgroup-path")
            defer { cgroup.restore() }
            let mountinfo = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)
            let mount = try #require(CgroupMount.cgroup2MountPoint(mountinfo: mountinfo))
            let expected = String(cgroup.path.dropFirst(mount.count))
            let serverPort = try freeLoopbackPort()
            let watch = try CLIProcess(Self.tcpnotify(), [
                "watch", "dport = :\(serverPort)", "--cgroup", cgroup.path, "--format", "json", "--when", "state == FIN_WAIT1",
            ])
            defer { watch.signal(SIGINT); _ = watch.waitForExit() }
            #expect(eventually(timeout: commandStartSeconds) { watch.standardError.contains("watching") }, "\(watch.standardError)")
            let pair = try ConnectedPair.make(serverPort: serverPort)
            try pair.client.shutdownWrite()
            #expect(eventually(timeout: 10) { !watch.notifications.isEmpty },
                    "no notification: \(watch.outputLines.map(\.text))")
            let notification = try #require(watch.notifications.first)
            #expect(notification.cgroup == expected, "\(notification)")
            #expect(notification.container == nil && notification.pod == nil)
        }

        /// Poll mode serves the same metrics: its notifications and the sockets it tracks.
        @Test(.enabled(if: KernelGate.canRun))
        func pollModeServesMetrics() throws {
            try KernelGate.require()
            let serverPort = try freeLoopbackPort()
            let pair = try ConnectedPair.make(serverPort: serverPort)
            let watch = try CLIProcess(Self.tcpnotify(), [
                "watch", "sport = :\(serverPort) or dport = :\(serverPort)", "--mode", "poll", "--interval", "100ms",
                "--format", "json", "--when", "metrics_poll=state == ESTABLISHED", "--metrics-address", "127.0.0.1:0",
                "--metrics-labels", "local_port",
            ])
            defer { watch.signal(SIGINT); _ = watch.waitForExit() }
            let port = try #require(waitForMetricsPort(watch), "\(watch.standardError)")
            var text = ""
            let counted = eventually(timeout: 10) {
                text = (try? httpGet(port: port, path: "/metrics").body) ?? ""
                return text.contains(#"tcpnotify_notifications_total{rule="metrics_poll",trigger="poll",local_port="\#(serverPort)"} 1"#)
                    && text.contains("tcpnotify_enrolled_sockets 2.0")
                    && text.contains(#"tcpnotify_mode{mode="poll"} 1.0"#) && text.contains(#"tcpnotify_mode{mode="push"} 0.0"#)
            }
            #expect(counted, "\(text)")
            withExtendedLifetime(pair) {}
        }

        /// Bad metrics and OTLP options: exit code 2 and a message that says what is wrong.
        @Test(arguments: [
            (["--metrics-address", "0", "--metrics-labels", "remote_port,bogus"], "unknown label 'bogus'"),
            (["--metrics-labels", "cgroup"], "needs --metrics-address"),
            (["--metrics-address", "example.com:80"], "numeric"),
            (["--metrics-address", "127.0.0.1:99999"], "port"),
            (["--otlp-endpoint", "collector:4318"], OTLPBuild.enabled ? "http://" : "OTLP trait"),
        ])
        func badExportOptionsExitWith2(arguments: [String], fragment: String) throws {
            let result = try CLIProcess.run(Self.tcpnotify(), ["watch", "--mode", "poll", "--duration", "1"] + arguments)
            #expect(result.status == 2, "\(arguments): \(result.status) \(result.stderr)")
            #expect(result.stderr.contains(fragment), "\(arguments): \(result.stderr)")
        }

        @Test func withoutTheTraitOTLPSaysHowToGetIt() throws {
            guard !OTLPBuild.enabled else { return }
            let result = try CLIProcess.run(Self.tcpnotify(), ["watch", "--otlp-endpoint", "http://127.0.0.1:4318"])
            #expect(result.status == 2)
            #expect(result.stderr.contains("swift build -c release --traits OTLP"), "\(result.stderr)")
        }
    }
}

enum OTLPBuild {
    static let enabled: Bool = {
        #if OTLP
        true
        #else
        false
        #endif
    }()
}

/// The metrics port `watch` reports on stderr (`metrics at http://127.0.0.1:PORT/metrics`).
func waitForMetricsPort(_ process: CLIProcess) -> UInt16? {
    var port: UInt16?
    _ = eventually(timeout: 10) {
        guard let range = process.standardError.range(of: "metrics at http://127.0.0.1:") else { return false }
        port = UInt16(process.standardError[range.upperBound...].prefix { $0.isNumber })
        return port != nil
    }
    return port
}

/// A loopback port nothing listens on now (bound and released; tests bind it again with SO_REUSEADDR).
func freeLoopbackPort() throws -> UInt16 {
    let probe = try TCPSocket(domain: AF_INET)
    try probe.bind(SocketAddress("127.0.0.1", port: 0))
    return try probe.localPort()
}

/// A plain HTTP/1.0 GET on loopback (HTTP/1.0: no chunked body, the server closes when done).
func httpGet(port: UInt16, path: String) throws -> (status: Int, body: String) {
    let socket = try TCPSocket(domain: AF_INET)
    try socket.connect(SocketAddress("127.0.0.1", port: port))
    let request = Array("GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".utf8)
    _ = request.withUnsafeBytes { send(socket.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    var timeout = timeval(tv_sec: 5, tv_usec: 0)
    setsockopt(socket.fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var response: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = recv(socket.fd, &buffer, buffer.count, 0)
        if count <= 0 { break }
        response += buffer[0..<count]
    }
    let text = String(decoding: response, as: UTF8.self)
    guard let end = text.range(of: "\r\n\r\n") else { throw SocketError("no HTTP response from port \(port): \(text)", EPROTO) }
    let status = Int(text.split(separator: " ").dropFirst().first ?? "") ?? 0
    return (status, String(text[end.upperBound...]))
}

/// Debian's Prometheus server and its HTTP API.
enum Prometheus {
    static var binary: String { FileManager.default.isExecutableFile(atPath: "/usr/bin/prometheus") ? "/usr/bin/prometheus" : "prometheus" }

    /// The raw JSON of an instant query.
    static func query(port: UInt16, _ expression: String) throws -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        let encoded = expression.addingPercentEncoding(withAllowedCharacters: allowed) ?? expression
        return try httpGet(port: port, path: "/api/v1/query?query=\(encoded)").body
    }

    /// The sample values of an instant-vector result.
    static func values(_ json: String) -> [Double] {
        guard let reply = try? JSONDecoder().decode(QueryReply.self, from: Data(json.utf8)) else { return [] }
        return reply.data.result.compactMap { $0.value.last?.text }.compactMap(Double.init)
    }

    /// `/api/v1/query`'s reply: each sample's `value` is `[time, "number"]` (the number as a string).
    struct QueryReply: Decodable {
        struct Result: Decodable { var value: [SampleField] }
        struct Data: Decodable { var result: [Result] }
        var data: Data
    }

    /// One element of a sample's `[time, "value"]`: the string one, or nil for the time.
    struct SampleField: Decodable {
        var text: String?
        init(from decoder: any Decoder) throws { text = try? decoder.singleValueContainer().decode(String.self) }
    }
}
