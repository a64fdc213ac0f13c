import Foundation
import TCPNotifyLab
import Glibc

/// One part's results: a table for people, figures (named with units) for machines, and notes saying how
/// it was measured or what could not be.
public struct BenchSection: Codable, Sendable {
    public var title: String
    public var columns: [String] = []
    public var rows: [[String]] = []
    public var figures: [String: Double] = [:]
    public var notes: [String] = []

    public init(title: String, columns: [String] = [], rows: [[String]] = [], notes: [String] = []) {
        self.title = title
        self.columns = columns
        self.rows = rows
        self.notes = notes
    }
}

/// A target from the issue, measured against: `met` is nil when it could not be measured.
public struct BenchTarget: Codable, Sendable {
    public var name: String
    public var target: String
    public var measured: String
    public var met: Bool?
    public var note: String = ""

    var verdict: String { met.map { $0 ? "met" : "MISSED" } ?? "not measured" }
}

public struct BenchMachine: Codable, Sendable {
    public var kernel: String
    public var cpus: Int
    public var cpuModel: String
    public var memoryGiB: Double

    static func current() -> BenchMachine {
        var names = utsname()
        uname(&names)
        let release = withUnsafeBytes(of: &names.release) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let model = cpuinfo.split(separator: "\n").first { $0.hasPrefix("model name") }
            .flatMap { $0.split(separator: ":", maxSplits: 1).last }.map { $0.trimmingCharacters(in: .whitespaces) } ?? "?"
        let meminfo = (try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8)) ?? ""
        let kilobytes = meminfo.split(separator: "\n").first { $0.hasPrefix("MemTotal:") }
            .flatMap { $0.split(separator: " ").dropFirst().first }.flatMap { Double($0) } ?? 0
        return BenchMachine(
            kernel: release, cpus: Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))), cpuModel: model,
            memoryGiB: (kilobytes / 1_048_576 * 10).rounded() / 10)
    }
}

public struct BenchReport: Codable, Sendable {
    public struct Settings: Codable, Sendable {
        var parts: [String]
        var durationSeconds: Double
        var sizes: [Int]
        var latencySamples: Int
        var dataPathRuns: Int
        var dataPathSeconds: Double
        var throughputSeconds: Double
        var throughputFlows: Int

        init(_ settings: BenchSettings) {
            parts = settings.parts.map(\.rawValue)
            durationSeconds = settings.durationSeconds
            sizes = settings.sizes
            latencySamples = settings.latencySamples
            dataPathRuns = settings.dataPathRuns
            dataPathSeconds = settings.dataPathSeconds
            throughputSeconds = settings.throughputSeconds
            throughputFlows = settings.throughputFlows
        }
    }

    public var machine: BenchMachine
    public var features: WatcherFeatures
    public var settings: Settings
    public var sections: [BenchSection]
    public var targets: [BenchTarget]
    public var elapsedSeconds: Double

    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    /// Tables in Markdown (readable in a terminal, pasteable into BENCHMARKS.md).
    public func text() -> String {
        var out = "tcpnotify benchmark: Linux \(machine.kernel), \(machine.cpus) CPU(s) (\(machine.cpuModel)), "
            + "\(machine.memoryGiB) GiB; \(String(format: "%.0f", elapsedSeconds)) s\n"
        var missing: [String] = []
        if !features.enrollsExisting { missing.append("enrollment of existing sockets") }
        if !features.pollMode { missing.append("--mode poll") }
        if !features.sweep { missing.append("the periodic sweep") }
        if !missing.isEmpty { out += "This tcpnotify build lacks: \(missing.joined(separator: ", ")).\n" }
        for section in sections {
            out += "\n### \(section.title)\n\n"
            if !section.columns.isEmpty {
                out += Self.table(header: section.columns, rows: section.rows)
            }
            for note in section.notes { out += "- \(note)\n" }
        }
        out += "\n### Targets\n\n"
        out += Self.table(
            header: ["target", "goal", "measured", "verdict", "note"],
            rows: targets.map { [$0.name, $0.target, $0.measured, $0.verdict, $0.note] })
        return out
    }

    static func table(header: [String], rows: [[String]]) -> String {
        let columnCount = header.count
        var widths = header.map(\.count)
        for row in rows { for (index, cell) in row.prefix(columnCount).enumerated() { widths[index] = max(widths[index], cell.count) } }
        func line(_ cells: [String]) -> String {
            let padded = (0..<columnCount).map { index in
                let cell = index < cells.count ? cells[index] : ""
                return cell + String(repeating: " ", count: widths[index] - cell.count)
            }
            return "| " + padded.joined(separator: " | ") + " |\n"
        }
        return line(header) + line(widths.map { String(repeating: "-", count: max(3, $0)) }) + rows.map(line).joined() + "\n"
    }
}

/// Number formatting for the tables.
enum BenchFormat {
    static func number(_ value: Double, decimals: Int = 0) -> String {
        let text = String(format: "%.\(decimals)f", value)
        guard decimals == 0, abs(value) >= 10_000 else { return text }
        var digits = Array(text)
        var index = digits.count - 3
        while index > (value < 0 ? 1 : 0) {
            digits.insert(",", at: index)
            index -= 3
        }
        return String(digits)
    }

    static func ratio(_ value: Double) -> String {
        if value.isInfinite { return "∞" }
        return value >= 100 ? number(value) + "×" : String(format: "%.1f×", value)
    }

    static func milliseconds(_ nanoseconds: Double) -> String {
        String(format: nanoseconds < 10_000_000 ? "%.2f" : "%.0f", nanoseconds / 1e6)
    }
}
