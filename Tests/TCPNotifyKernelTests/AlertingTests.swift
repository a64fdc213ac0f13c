import Foundation
import Glibc
import Synchronization
import TCPNotifyLab
import Testing

extension KernelSuite {
    /// The packaged alerts end to end: a reader stops reading on a real loopback connection, `tcpnotify
    /// serve --history` judges it, Debian's Prometheus scrapes /metrics and evaluates the packaged rule
    /// expressions (a copy with `for: 2s`), Debian's Alertmanager delivers the alert to a webhook in the
    /// test, whose payload names the alert and the connection. The dashboard and the rules are checked
    /// against the same real scrape: every metric name they use is one serve emits.
    @Suite struct Alerting {
        static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        static var alertmanager: String {
            ["/usr/bin/prometheus-alertmanager", "/usr/bin/alertmanager"].first { FileManager.default.isExecutableFile(atPath: $0) }
                ?? "prometheus-alertmanager"
        }

        /// The packaged alert rules with every `for:` made 2 s; the expressions are the packaged ones.
        static func rulesWithShortFor() throws -> String {
            let text = try String(contentsOf: root.appendingPathComponent("packaging/prometheus/tcpnotify-alerts.yml"), encoding: .utf8)
            return text.replacingOccurrences(of: #"(?m)^(\s+)for: \S+$"#, with: "$1for: 2s", options: .regularExpression)
        }

        /// The `expr:` values of rule files: inline, or the indented lines of an `expr: |` block.
        static func ruleExpressions(_ text: String) -> [String] {
            var expressions: [String] = []
            var block: (indent: Int, lines: [String])?
            for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
                let indent = line.prefix { $0 == " " }.count
                if let current = block {
                    if indent > current.indent && !line.trimmingCharacters(in: .whitespaces).isEmpty {
                        block?.lines.append(String(line))
                        continue
                    }
                    expressions.append(current.lines.joined(separator: "\n"))
                    block = nil
                }
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                guard trimmed.hasPrefix("expr:") else { continue }
                let value = trimmed.dropFirst("expr:".count).trimmingCharacters(in: .whitespaces)
                if value == "|" { block = (indent, []) } else { expressions.append(value) }
            }
            if let block { expressions.append(block.lines.joined(separator: "\n")) }
            return expressions
        }

        /// The name check sees metric names, not functions, labels, keywords, ranges or strings.
        @Test func metricNamesAreFoundInPromQL() {
            let query = #"sum by (rule) (rate(tcpnotify_notifications_total{job="x",rule=~"a|b"}[$__rate_interval])) "#
                + #"/ ignoring(trigger) group_left max_over_time(other_metric:rate5m[5m] offset 1m) > bool 0 or up == 0"#
            #expect(PromQLNames.metricNames(in: query) == ["tcpnotify_notifications_total", "other_metric:rate5m", "up"])
            let exposition = "# HELP a_total x\n# TYPE a_total counter\na_total 1\n# TYPE b gauge\nc{l=\"v\"} 2\n"
            #expect(PromQLNames.families(inExposition: exposition) == ["a_total", "b", "c"])
            #expect(Self.ruleExpressions("    expr: up == 0\n    expr: |\n      a\n      or b\n    for: 1m\n") == ["up == 0", "      a\n      or b"])
        }

        @Test(.enabled(if: KernelGate.canRun(needing: ["prometheus", "prometheus-alertmanager"])))
        func aReaderThatStopsReadingReachesTheWebhook() throws {
            try KernelGate.require(needing: ["prometheus", "prometheus-alertmanager"])
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tcpnotify-alerting-\(getpid())").path
            try FileManager.default.createDirectory(atPath: directory + "/prometheus", withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: directory + "/alertmanager", withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let cgroup = try TestCgroup(name: "alerting")
            defer { cgroup.restore() }

            let server = try LoopbackServer()
            let config = directory + "/tcpnotify.yaml"
            try "filter: \"dport = :\(server.port)\"\nrules:\n  - \"window_closed=snd_wnd == 0\"\n"
                .write(toFile: config, atomically: true, encoding: .utf8)
            let serve = try ServeProcess(cgroup: cgroup, extra: [
                "--config", config, "--history", "sport = :\(server.port) or dport = :\(server.port)", "--sweep-interval", "500ms",
            ])
            let metricsPort = try #require(waitForMetricsPort(serve.process), "\(serve.process.standardError)")
            let subscriber = try RawSubscriber(socketPath: serve.socketPath) // its drop counter starts at 0
            _ = try subscriber.subscribe(filter: "dport = :\(server.port)", rules: ["fin=state == FIN_WAIT1"])

            let webhook = try WebhookReceiver()
            defer { webhook.stop() }
            let alertmanagerPort = try freeLoopbackPort()
            try """
                route:
                  receiver: test
                  group_by: ['alertname', 'cookie']
                  group_wait: 0s
                  group_interval: 1s
                  repeat_interval: 1h
                receivers:
                  - name: test
                    webhook_configs:
                      - url: 'http://127.0.0.1:\(webhook.port)/alerts'
                        send_resolved: false
                """.write(toFile: directory + "/alertmanager.yml", atomically: true, encoding: .utf8)
            let alertmanager = try CLIProcess(Self.alertmanager, [
                "--config.file=\(directory)/alertmanager.yml", "--storage.path=\(directory)/alertmanager",
                "--web.listen-address=127.0.0.1:\(alertmanagerPort)", "--cluster.listen-address=", "--log.level=warn",
            ])
            defer { alertmanager.signal(SIGTERM); _ = alertmanager.waitForExit(timeout: 10) }

            try Self.rulesWithShortFor().write(toFile: directory + "/alerts.yml", atomically: true, encoding: .utf8)
            try """
                global:
                  scrape_interval: 1s
                  evaluation_interval: 1s
                rule_files: ['\(directory)/alerts.yml']
                alerting:
                  alertmanagers:
                    - static_configs:
                        - targets: ['127.0.0.1:\(alertmanagerPort)']
                scrape_configs:
                  - job_name: tcpnotify
                    scrape_timeout: 1s
                    static_configs:
                      - targets: ['127.0.0.1:\(metricsPort)']
                """.write(toFile: directory + "/prometheus.yml", atomically: true, encoding: .utf8)
            let prometheusPort = try freeLoopbackPort()
            let prometheus = try CLIProcess(Prometheus.binary, [
                "--config.file=\(directory)/prometheus.yml", "--storage.tsdb.path=\(directory)/prometheus",
                "--web.listen-address=127.0.0.1:\(prometheusPort)", "--log.level=warn",
            ])
            defer { prometheus.signal(SIGTERM); _ = prometheus.waitForExit(timeout: 10) }

            // The flow: the client writes all the time; the server reads for a second, then stops.
            let pair = try server.connect()
            let clientCookie = try pair.client.cookie()
            let clientPort = try pair.client.localPort()
            let reading = Atomic<Bool>(true), running = Atomic<Bool>(true)
            let clientFD = pair.client.fd, serverFD = pair.server.fd
            let traffic = Thread {
                var sink = [UInt8](repeating: 0, count: 1 << 16)
                while running.load(ordering: .relaxed) {
                    _ = TCPSocket.borrowing(clientFD).fillWithoutBlocking()
                    while reading.load(ordering: .relaxed), recv(serverFD, &sink, sink.count, Int32(MSG_DONTWAIT)) > 0 {}
                    usleep(5000)
                }
            }
            traffic.start()
            defer { running.store(false, ordering: .relaxed); usleep(20_000); withExtendedLifetime(pair) {} }
            sleep(1)
            reading.store(false, ordering: .relaxed)
            let impaired = Date()

            let alertName = "TCPNotifyConnectionWindowLimited"
            var delivered: (time: Date, alert: AlertmanagerPayload.Alert)?
            let arrived = eventually(timeout: 30) {
                for (time, body) in webhook.bodies {
                    let payload = try? JSONDecoder().decode(AlertmanagerPayload.self, from: Data(body.utf8))
                    for alert in payload?.alerts ?? [] {
                        let labels = alert.labels
                        if labels["alertname"] == alertName && labels["cookie"] == String(clientCookie) {
                            delivered = (time, alert)
                            return true
                        }
                    }
                }
                usleep(200_000)
                return false
            }
            #expect(arrived, """
                no \(alertName) for cookie \(clientCookie) at the webhook: \(webhook.bodies.map(\.body))
                metrics: \((try? httpGet(port: metricsPort, path: "/metrics").body)?.split(separator: "\n").filter { $0.hasPrefix("tcpnotify_connection") } ?? [])
                prometheus alerts: \((try? httpGet(port: prometheusPort, path: "/api/v1/alerts").body) ?? "")
                alertmanager: \(alertmanager.standardError.suffix(1500)) prometheus: \(prometheus.standardError.suffix(1500))
                """)
            if let delivered {
                let labels = delivered.alert.labels
                #expect(labels["local"] == "127.0.0.1:\(clientPort)" && labels["remote"] == "127.0.0.1:\(server.port)", "\(labels)")
                #expect(labels["bottleneck"] == "receiver-window-limited" && labels["job"] == "tcpnotify", "\(labels)")
                let summary = delivered.alert.annotations["summary"] ?? ""
                #expect(summary.contains("127.0.0.1:\(clientPort) -> 127.0.0.1:\(server.port)"), "\(summary)")
                let seconds = delivered.time.timeIntervalSince(impaired)
                print("alerting: reader stopped -> \(alertName) at the webhook in \(String(format: "%.1f", seconds)) s")
                #expect(seconds < 30)
            }

            // The dashboard and the rules use only metric names this serve emits (from the real scrape).
            let scrape = try httpGet(port: metricsPort, path: "/metrics").body
            let emitted = PromQLNames.families(inExposition: scrape)
            for name in ["tcpnotify_notifications_total", "tcpnotify_diagnoses_total", "tcpnotify_subscriber_drops_total",
                         "tcpnotify_connection_verdict_seconds", "tcpnotify_mode"] {
                #expect(emitted.contains(name), "the scrape lacks \(name): \(scrape)")
            }
            let dashboard = try GrafanaDashboard.load(Self.root.appendingPathComponent("packaging/grafana/tcpnotify-dashboard.json"))
            let queries = dashboard.queries
            #expect(queries.count >= 10)
            let generatedByPrometheus: Set<String> = ["up"]
            let dashboardNames = Set(queries.flatMap(PromQLNames.metricNames(in:))).subtracting(generatedByPrometheus)
            #expect(dashboardNames.count >= 15, "\(dashboardNames.sorted())")
            #expect(dashboardNames.subtracting(emitted).isEmpty, "dashboard names serve does not emit: \(dashboardNames.subtracting(emitted).sorted())")
            let ruleText = try String(contentsOf: Self.root.appendingPathComponent("packaging/prometheus/tcpnotify-alerts.yml"), encoding: .utf8)
                + String(contentsOf: Self.root.appendingPathComponent("packaging/prometheus/tcpnotify-recording.yml"), encoding: .utf8)
            let expressions = Self.ruleExpressions(ruleText)
            #expect(expressions.count == 18, "\(expressions)")
            var ruleNames = Set(expressions.flatMap(PromQLNames.metricNames(in:))).subtracting(generatedByPrometheus)
            // Reported only on hosts that refuse a feature (the count is always there).
            if sampleValue(scrape, "tcpnotify_degraded_features") == 0 { ruleNames.remove("tcpnotify_degraded_feature") }
            #expect(ruleNames.count >= 10, "\(ruleNames.sorted())")
            #expect(ruleNames.subtracting(emitted).isEmpty, "rule names serve does not emit: \(ruleNames.subtracting(emitted).sorted())")
            withExtendedLifetime((pair, subscriber, serve)) {}
        }
    }
}

/// The value of an unlabelled sample in a text exposition.
func sampleValue(_ text: String, _ name: String) -> Double? {
    text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ")[1]) }
}

/// What Alertmanager posts to a webhook: the alerts with their labels and annotations.
struct AlertmanagerPayload: Decodable {
    struct Alert: Decodable {
        var labels: [String: String]
        var annotations: [String: String]
    }
    var alerts: [Alert]
}
