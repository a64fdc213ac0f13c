import Foundation
import TCPNotifyLab
import Glibc
import TCPNotifyCore

/// The parts of `tcpnotify-lab bench`. `enrollment` also measures the watcher's peak RSS (memory).
public enum BenchPart: String, CaseIterable, Sendable, Codable {
    case idle, latency, datapath, throughput, enrollment
    /// Not in the default run: the per-callback cost of several rule sets (scripts/measure-callback-cost).
    case callbackCost = "callback-cost"
    /// Records per second into the in-process Swift API (not a default part).
    case records

    public static let defaultParts: [BenchPart] = [.idle, .latency, .datapath, .throughput, .enrollment]
}

public struct BenchSettings: Sendable {
    public var tcpnotifyPath: String
    /// This executable, for the `idle-connections` helper.
    public var labPath: String
    public var parts: [BenchPart] = BenchPart.defaultParts
    /// The steady-state CPU window of each idle-cost mode.
    public var durationSeconds: Double = 30
    public var sizes: [Int] = [1_000, 10_000, 50_000]
    public var latencySamples = 200
    public var dataPathRuns = 3
    public var dataPathSeconds: Double = 5
    public var throughputSeconds: Double = 5
    public var throughputFlows = 64
    public var callbackCostRuns = 3

    public init(tcpnotifyPath: String, labPath: String) {
        self.tcpnotifyPath = tcpnotifyPath
        self.labPath = labPath
    }
}

/// Which of the features landing in parallel the tcpnotify binary has, from `tcpnotify watch --help`.
public struct WatcherFeatures: Sendable, Codable {
    /// Enrolls pre-existing sockets at start (iter/tcp) and has `--no-existing`.
    public var enrollsExisting: Bool
    /// `--mode bpf|poll|auto --interval`.
    public var pollMode: Bool
    public var sweep: Bool

    static func probe(tcpnotify: String) -> WatcherFeatures {
        let help = (try? Subprocess.run([tcpnotify, "watch", "--help"], timeoutSeconds: 10).stdout) ?? ""
        return WatcherFeatures(
            enrollsExisting: help.contains("--no-existing"), pollMode: help.contains("--mode"),
            sweep: help.contains("--sweep-interval"))
    }
}

/// Runs the selected parts and collects sections and target verdicts.
public final class Benchmark: @unchecked Sendable {
    let settings: BenchSettings
    let environment: BenchEnvironment
    let features: WatcherFeatures
    var sections: [BenchSection] = []
    var targets: [BenchTarget] = []
    /// Results other parts' targets need, by key.
    var measured: [String: Double] = [:]

    /// Ports below the ephemeral range (32768+), so accepted sockets never match a `dport` filter.
    static let idleBasePort: UInt16 = 21_000
    static let latencyPort: UInt16 = 22_000
    static let dataPathPort: UInt16 = 22_100
    static let throughputPort: UInt16 = 22_200
    /// Rules for the idle and enrollment runs: the built-in ones plus a stall rule on a time field (which
    /// makes push pay for its periodic sweep, as a real stall detector would). Never true on idle loopback.
    static let idleRules = ["rtt > 200ms", "rttvar > 50ms", "total_retrans > 16", "retransmits >= 3", "stall=last_ack_recv > 1h"]

    public init(settings: BenchSettings) throws {
        self.settings = settings
        features = WatcherFeatures.probe(tcpnotify: settings.tcpnotifyPath)
        environment = try BenchEnvironment()
    }

    public func run(progress: (String) -> Void) -> BenchReport {
        defer { environment.restore() }
        let started = Date()
        for part in settings.parts {
            progress("== \(part.rawValue)")
            do {
                switch part {
                case .idle, .enrollment:
                    // Both use the same held connections; measured together per size, once.
                    if part == .enrollment && settings.parts.contains(.idle) { continue }
                    try runIdleAndEnrollment(progress: progress)
                case .latency: try runLatency(progress: progress)
                case .datapath: try runDataPath(progress: progress)
                case .throughput: try runThroughput(progress: progress)
                case .callbackCost: try runCallbackCost(progress: progress)
                case .records: try runRecordPath(progress: progress)
                }
            } catch {
                sections.append(BenchSection(title: part.rawValue, notes: ["failed: \(error)"]))
                progress("   failed: \(error)")
            }
        }
        return BenchReport(
            machine: BenchMachine.current(), features: features, settings: BenchReport.Settings(settings),
            sections: sections, targets: targets, elapsedSeconds: Date().timeIntervalSince(started))
    }

    // MARK: - Shared helpers

    /// Starts `tcpnotify watch` in the children cgroup, attached to the bench cgroup, JSON to our pipe.
    func startWatcher(filter: String?, rules: [String], extra: [String] = [],
                      onNotification: BenchProcess.LineHandler? = nil) throws -> BenchProcess {
        var arguments = [settings.tcpnotifyPath, "watch"]
        if let filter { arguments.append(filter) }
        arguments += rules.flatMap { ["--when", $0] }
        arguments += ["--cgroup", environment.cgroupPath, "--format", "json", "--no-close-records"] + extra
        let watcher = try BenchProcess(arguments, cgroup: environment.childrenCgroup, onNotification: onNotification)
        // Push prints "watching cgroup ..." once attached; other modes print their own "tcpnotify: ..." line.
        let deadline = Date().addingTimeInterval(120)
        while Date() < deadline && watcher.isRunning {
            let text = watcher.stderr
            if text.contains("watching") || text.contains("polling") { break }
            BenchClock.sleep(seconds: 0.005)
        }
        // Push enrolls pre-existing sockets after the attachment; that line ends its startup (polling has none).
        if features.enrollsExisting && !extra.contains("--no-existing") && !extra.contains("poll") {
            while Date() < deadline && watcher.isRunning {
                let text = watcher.stderr
                if text.contains("existing socket(s) in") || text.contains("existing sockets are not enrolled") { break }
                BenchClock.sleep(seconds: 0.002)
            }
        }
        guard watcher.isRunning else {
            throw LabError.commandFailed(command: arguments, status: watcher.stop().status, stderr: watcher.stderr)
        }
        return watcher
    }

    /// Stops a watcher with SIGINT and returns its final stats line, parsed.
    func stopWatcher(_ watcher: BenchProcess) -> Wire.Stats? {
        watcher.stop(signal: SIGINT, graceSeconds: 10)
        return watcher.otherStdoutLines.last(where: { $0.contains("\"type\":\"stats\"") }).flatMap { try? Wire.decode(Wire.Stats.self, from: $0) }
    }

    /// `--no-existing` when the build has it: runs that only watch new connections should not walk (and
    /// enroll) every socket on the host.
    var newConnectionsOnly: [String] { features.enrollsExisting ? ["--no-existing"] : [] }

    func addTarget(_ target: BenchTarget) { targets.append(target) }
}

extension Array where Element == Double {
    /// The q-quantile (0...1) by nearest rank; nil when empty.
    func quantile(_ q: Double) -> Double? {
        guard !isEmpty else { return nil }
        let sorted = self.sorted()
        let rank = Int((q * Double(sorted.count)).rounded(.up))
        return sorted[Swift.max(0, Swift.min(sorted.count - 1, rank - 1))]
    }

    var median: Double? { quantile(0.5) }
}
