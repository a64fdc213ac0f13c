import Foundation
@testable import TCPNotifyCore

/// A recorded lab flow: the client's getsockopt(TCP_INFO) series from `tcpnotify-lab scenario --save`,
/// thinned to one sample per 500 ms (what `tcpnotify diagnose` gets). Fixtures/diagnosis/README.md says
/// how each was made.
struct DiagnosisFixture {
    struct Entry {
        var phase: String
        var sample: DiagnosisSample
    }

    let name: String
    let entries: [Entry]

    init(_ name: String, filePath: String = #filePath) throws {
        self.name = name
        let url = URL(fileURLWithPath: filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/diagnosis/\(name).jsonl")
        let text = try String(contentsOf: url, encoding: .utf8)
        entries = try text.split(separator: "\n").map { line in
            let object: SampleLine
            do {
                object = try Wire.decodeValue(SampleLine.self, from: Array(line.utf8))
            } catch {
                throw FixtureError(description: "\(name): unreadable line (\(error)) \(line.prefix(80))")
            }
            var names: [String: String] = [:]
            for field in ["state", "ca_state"] { names[field] = object.tcp_info.name(field) }
            guard let sample = DiagnosisSample(monotonicNanoseconds: object.ts_mono_ns, numbers: object.tcp_info.numbers, names: names) else {
                throw FixtureError(description: "\(name): unknown state in \(line.prefix(80))")
            }
            return Entry(phase: object.phase ?? "", sample: sample)
        }
    }

    var samples: [DiagnosisSample] { entries.map(\.sample) }

    /// Samples up to and including the last one of `phase`.
    func samples(through phase: String) -> [DiagnosisSample] {
        guard let last = entries.lastIndex(where: { $0.phase == phase }) else { return [] }
        return entries[...last].map(\.sample)
    }

    struct FixtureError: Error, CustomStringConvertible { let description: String }

    /// A `"type":"tcp_info"` line of `tcpnotify-lab` (`TCPInfoSampler`): its tcp_info is the wire `tcp_info` object.
    private struct SampleLine: Decodable {
        var ts_mono_ns: UInt64
        var phase: String?
        var tcp_info: Wire.TCPInfoObject
    }
}

/// Builds tcp_info series by the second: each step says how the counters moved, so tests can state a
/// flow's behaviour (busy share, window limits, loss, RTT) directly.
struct SyntheticFlow {
    private(set) var samples: [DiagnosisSample] = []
    private var info = TCPInfo()
    private var time: UInt64 = 1_000_000_000

    init(minRTTMicroseconds: UInt64 = 10_000) {
        info[.state] = UInt64(TCPState.established.rawValue)
        info[.sndMss] = 1448
        info[.minRtt] = minRTTMicroseconds
        info[.rtt] = minRTTMicroseconds
        info[.sndCwnd] = 40
        info[.sndWnd] = 1 << 20
        samples.append(DiagnosisSample(monotonicNanoseconds: time, info: info))
    }

    struct Step {
        var seconds = 0.5
        var busyShare = 1.0
        var rwndShare = 0.0
        var sndbufShare = 0.0
        var bytesPerSecond = 1_000_000.0
        var retransmitShare = 0.0
        var rttMicroseconds: UInt64?
        var rateAppLimited = false
        var notsentBytes: UInt64 = 100_000
        var sndWnd: UInt64?
        var unacked: UInt64 = 20
    }

    mutating func run(_ step: Step, times: Int = 1) {
        for _ in 0..<times {
            let micros = step.seconds * 1e6
            time += UInt64(step.seconds * 1e9)
            info[.busyTime] += UInt64(micros * step.busyShare)
            info[.rwndLimited] += UInt64(micros * step.busyShare * step.rwndShare)
            info[.sndbufLimited] += UInt64(micros * step.busyShare * step.sndbufShare)
            let sent = UInt64(step.bytesPerSecond * step.seconds)
            info[.bytesSent] += sent
            info[.bytesRetrans] += UInt64(Double(sent) * step.retransmitShare)
            info[.bytesAcked] += sent - UInt64(Double(sent) * step.retransmitShare)
            if let rtt = step.rttMicroseconds { info[.rtt] = rtt }
            info[.deliveryRateAppLimited] = step.rateAppLimited ? 1 : 0
            info[.deliveryRate] = UInt64(step.bytesPerSecond)
            info[.notsentBytes] = step.notsentBytes
            info[.unacked] = step.unacked
            if let window = step.sndWnd { info[.sndWnd] = window }
            info[.lastDataSent] = sent > 0 ? 0 : info[.lastDataSent] + UInt64(step.seconds * 1000)
            samples.append(DiagnosisSample(monotonicNanoseconds: time, info: info))
        }
    }

    var lastTime: UInt64 { time }
}
