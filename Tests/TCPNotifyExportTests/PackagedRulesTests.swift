import Foundation
import TCPNotifyLab
import Testing

/// packaging/prometheus and packaging/grafana: the rule files pass Debian's `promtool check rules` and
/// their unit tests (`promtool test rules`); every dashboard query is valid PromQL. promtool ships in the
/// `prometheus` package (scripts/install-deps): without it these tests fail, they do not skip.
@Suite struct PackagedRulesTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let rules = root.appendingPathComponent("packaging/prometheus")
    static let dashboard = root.appendingPathComponent("packaging/grafana/tcpnotify-dashboard.json")
    static let ruleFiles = ["tcpnotify-alerts.yml", "tcpnotify-recording.yml"]
    static let unitTests = ["tests/tcpnotify-alerts.test.yml", "tests/tcpnotify-recording.test.yml"]

    static func promtool(_ arguments: [String], in directory: URL = rules) throws -> (status: Int32, output: String) {
        let path = ["/usr/bin/promtool", "/usr/local/bin/promtool"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let path else { throw TestFailure("promtool is missing: install Debian's prometheus package (scripts/install-deps)") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.currentDirectoryURL = directory
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    @Test func ruleFilesPassPromtoolCheck() throws {
        let result = try Self.promtool(["check", "rules"] + Self.ruleFiles)
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("SUCCESS: 12 rules found") && result.output.contains("SUCCESS: 6 rules found"), "\(result.output)")
    }

    @Test(arguments: unitTests)
    func ruleUnitTestsPass(file: String) throws {
        let result = try Self.promtool(["test", "rules", file])
        #expect(result.status == 0 && result.output.contains("SUCCESS"), "\(result.output)")
    }

    /// The unit tests can fail: an alert expected that the rules do not fire is reported.
    @Test func aWrongExpectationFails() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tcpnotify-rules-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try """
            rule_files: [\(Self.rules.appendingPathComponent("tcpnotify-alerts.yml").path)]
            tests:
              - interval: 1m
                input_series:
                  - series: 'tcpnotify_connection_stalled{cookie="1",local="a:1",remote="b:2"}'
                    values: '1x2'
                alert_rule_test:
                  - eval_time: 2m
                    alertname: TCPNotifyConnectionStalled
                    exp_alerts: []
            """.write(to: directory.appendingPathComponent("wrong.test.yml"), atomically: true, encoding: .utf8)
        let result = try Self.promtool(["test", "rules", "wrong.test.yml"], in: directory)
        #expect(result.status != 0 && result.output.contains("TCPNotifyConnectionStalled"), "\(result.output)")
    }

    /// The dashboard's queries, read from its JSON.
    static func dashboardQueries() throws -> [String] {
        try GrafanaDashboard.load(dashboard).queries
    }

    /// Valid JSON with panels, each with a query; every query parses as PromQL (promtool checks it as a
    /// recording rule, with Grafana's `$variables` replaced by values).
    @Test func dashboardQueriesAreValidPromQL() throws {
        let object = try GrafanaDashboard.load(Self.dashboard)
        #expect(object.uid == "tcpnotify")
        let panels = object.panels
        #expect(panels.count >= 10)
        for panel in panels {
            #expect(!(panel.targets ?? []).isEmpty, "a panel without a query: \(panel.title ?? "")")
        }
        let queries = try Self.dashboardQueries()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("tcpnotify-dashboard-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var text = "groups:\n  - name: dashboard\n    rules:\n"
        for (index, query) in queries.enumerated() {
            let concrete = query.replacingOccurrences(of: "$__rate_interval", with: "1m")
                .replacingOccurrences(of: "$job", with: "tcpnotify").replacingOccurrences(of: "$instance", with: ".*")
            #expect(!concrete.contains("$"), "an unknown variable: \(query)")
            text += "      - record: dashboard:query\(index)\n        expr: '\(concrete.replacingOccurrences(of: "'", with: "''"))'\n"
        }
        try text.write(to: directory.appendingPathComponent("dashboard.yml"), atomically: true, encoding: .utf8)
        let result = try Self.promtool(["check", "rules", "dashboard.yml"], in: directory)
        #expect(result.status == 0 && result.output.contains("SUCCESS: \(queries.count) rules found"), "\(result.output)")
    }
}
