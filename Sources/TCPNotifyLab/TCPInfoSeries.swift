import Foundation
import TCPNotifyCore

/// The `tcp_info` JSON lines a traffic program printed (see `TCPInfoSampler`), read back for checking.
public struct TCPInfoSeries: Sendable {
    public struct Entry: Sendable {
        public var side: String
        public var phase: String
        public var local: String
        public var remote: String
        public var cookie: UInt64
        public var sample: DiagnosisSample
        /// The JSON line as printed.
        public var line: String
    }

    public private(set) var entries: [Entry]

    public init(entries: [Entry]) { self.entries = entries }

    /// Parses every `"type":"tcp_info"` line of `text`; other lines are skipped.
    public init(jsonLines text: String) throws {
        entries = []
        for line in text.split(separator: "\n") where line.contains("\"tcp_info\"") {
            guard (try? Wire.lineType(of: line)) == TCPInfoSampleLine.lineType else { continue }
            let sampleLine: TCPInfoSampleLine
            do {
                sampleLine = try Wire.decode(TCPInfoSampleLine.self, from: line)
            } catch {
                throw LabError.invalidArgument("unreadable tcp_info line (\(error)): \(line.prefix(200))")
            }
            guard let entry = Self.entry(sampleLine, line: String(line)) else {
                throw LabError.invalidArgument("unknown state in tcp_info line: \(line.prefix(200))")
            }
            entries.append(entry)
        }
    }

    public var samples: [DiagnosisSample] { entries.map(\.sample) }

    /// The entries of one side (`client` or `server`).
    public func side(_ side: String) -> TCPInfoSeries { TCPInfoSeries(entries: entries.filter { $0.side == side }) }

    /// The entries whose phase is `phase`.
    public func phase(_ phase: String) -> TCPInfoSeries { TCPInfoSeries(entries: entries.filter { $0.phase == phase }) }

    /// The entries up to and including the last one of `phase` (to judge a flow as it was at that phase's end).
    public func through(phase: String) -> TCPInfoSeries {
        guard let last = entries.lastIndex(where: { $0.phase == phase }) else { return TCPInfoSeries(entries: []) }
        return TCPInfoSeries(entries: Array(entries[...last]))
    }

    /// Seconds from the first to the last entry.
    public var seconds: Double {
        guard let first = entries.first?.sample.monotonicNanoseconds, let last = entries.last?.sample.monotonicNanoseconds,
              last > first else { return 0 }
        return Double(last - first) / 1e9
    }

    /// The entries after the first `seconds` (to skip slow start).
    public func dropping(firstSeconds seconds: Double) -> TCPInfoSeries {
        guard let first = entries.first?.sample.monotonicNanoseconds else { return self }
        let start = first + UInt64(seconds * 1e9)
        return TCPInfoSeries(entries: entries.filter { $0.sample.monotonicNanoseconds >= start })
    }

    /// The share (0...1) of entries whose tcp_info satisfies `predicate`.
    public func share(where predicate: (TCPInfo) -> Bool) -> Double {
        entries.isEmpty ? 0 : Double(entries.filter { predicate($0.sample.info) }.count) / Double(entries.count)
    }

    /// How `field` grew from the first to the last entry.
    public func growth(of field: TCPInfoField) -> UInt64 {
        guard let first = entries.first?.sample.info[field], let last = entries.last?.sample.info[field] else { return 0 }
        return last >= first ? last - first : 0
    }

    static func entry(_ sampleLine: TCPInfoSampleLine, line: String) -> Entry? {
        var names: [String: String] = [:]
        for field in ["state", "ca_state"] { names[field] = sampleLine.tcpInfo.name(field) }
        guard let sample = DiagnosisSample(
            monotonicNanoseconds: sampleLine.tsMonoNs, numbers: sampleLine.tcpInfo.numbers, names: names) else { return nil }
        return Entry(
            side: sampleLine.side, phase: sampleLine.phase, local: sampleLine.src ?? "", remote: sampleLine.dst ?? "",
            cookie: sampleLine.cookie ?? 0, sample: sample, line: line)
    }
}
