import Testing
@testable import TCPNotifyCore

/// Diagnosis, verdict, stats and subscriber lines: what the formatters write decodes into the same wire
/// values, with the documented key order.
@Suite struct WireLinesTests {
    static let report = DiagnosisReport(
        cookie: 4099, local: DiagnosisTrackerTests.local, remote: DiagnosisTrackerTests.remote, isClosed: false,
        diagnosis: Diagnosis(
            bottleneck: .receiverWindowLimited, confidence: 0.93,
            evidence: DiagnosisEvidence(["rwnd_limited_pct": 99.5, "busy_pct": 100, "retrans_rate": 0.000123]),
            signals: [.zeroWindow, .rttInflation], summary: "window"))

    static func keys(_ line: String) -> [String] {
        // Top-level keys in written order: every `"name":` at nesting depth 1.
        var keys: [String] = [], depth = 0, inString = false, escaped = false, current = "", afterString = false
        for character in line {
            if inString {
                if escaped { escaped = false; current.append(character) } else if character == "\\" { escaped = true } else if character == "\"" {
                    inString = false
                    afterString = true
                    continue
                } else { current.append(character) }
                continue
            }
            if character == ":" && afterString && depth == 1 { keys.append(current) }
            afterString = false
            switch character {
            case "\"": inString = true; current = ""
            case "{", "[": depth += 1
            case "}", "]": depth -= 1
            default: break
            }
        }
        return keys
    }

    @Test func diagnosisLinesRoundTrip() throws {
        let formatter = DiagnosisFormatter(format: .json)
        let line = formatter.jsonLine(for: Self.report)
        #expect(Self.keys(line) == ["type", "src", "dst", "cookie", "end", "bottleneck", "confidence", "evidence", "signals", "summary"])
        let decoded = try Wire.decode(Wire.DiagnosisLine.self, from: line)
        #expect(decoded == Wire.DiagnosisLine(Self.report))
        #expect(decoded.verdict.evidence["retrans_rate"] == 0.000123 && decoded.verdict.signals == [.zeroWindow, .rttInflation])

        let summary = FlowSummary(
            observedNanoseconds: 12_400_000_000, firstVerdictMilliseconds: 1520,
            verdictShares: [.init(bottleneck: .applicationLimited, share: 0.25), .init(bottleneck: .receiverWindowLimited, share: 0.75)],
            bytesSent: 1 << 40, bytesAcked: 99, bytesReceived: 0, bytesRetransmitted: 7, retransmits: 3,
            minRTTMicroseconds: 10_000, averageRTTMicroseconds: 12_000)
        let final = formatter.jsonLine(for: Self.report, summary: summary)
        #expect(Self.keys(final).last == "lifetime")
        let withLifetime = try Wire.decode(Wire.DiagnosisLine.self, from: final)
        #expect(withLifetime.lifetime == Wire.Lifetime(summary))
        #expect(withLifetime.lifetime?.verdicts.map(\.bottleneck) == [.applicationLimited, .receiverWindowLimited])
    }

    @Test func verdictLinesRoundTrip() throws {
        let updates = [
            VerdictUpdate(kind: .first, report: Self.report, elapsedNanoseconds: 1_500_000_000),
            VerdictUpdate(kind: .change, report: Self.report, elapsedNanoseconds: 3_000_000_000, previous: .applicationLimited,
                          previousHeldNanoseconds: 1_500_000_000),
            VerdictUpdate(kind: .interval, report: Self.report, elapsedNanoseconds: 9_000_000_000, heldNanoseconds: 6_000_000_000),
        ]
        for update in updates {
            let line = DiagnosisFormatter(format: .json).jsonLine(for: update)
            #expect(Array(Self.keys(line).prefix(6)) == ["type", "event", "elapsed_ms", "src", "dst", "cookie"])
            #expect(try Wire.decode(Wire.VerdictLine.self, from: line) == Wire.VerdictLine(update), "\(line)")
        }
        let bad = DiagnosisFormatter(format: .json).jsonLine(for: updates[0]).replacing(#""event":"first""#, with: #""event":"later""#)
        #expect(throws: Wire.DecodeError.self) { try Wire.decode(Wire.VerdictLine.self, from: bad) }
    }

    @Test func statsLinesRoundTrip() throws {
        var statistics = WatchStatistics()
        statistics.events = 10
        statistics.enrolled = 3
        statistics.ringDrops = UInt64.max
        let formatter = NotificationFormatter(format: .json, ruleNames: [], realtimeOffsetNanoseconds: 0)
        let plain = formatter.line(for: statistics)
        #expect(Self.keys(plain) == ["type", "events", "established", "enrolled", "notifications", "received", "ring_drops",
                                     "user_drops", "enroll_failures", "wakeups", "existing_enrolled", "sweeps", "sweep_checks"])
        #expect(try Wire.decode(Wire.Stats.self, from: plain) == Wire.Stats(statistics))

        statistics.viaTracepoints = 4
        statistics.degradations = [
            Degradation(feature: "sweep", program: "sweep_enrolled", reason: "refused", lost: "slower", replacement: "sweep_sockets"),
            Degradation(feature: "x", program: "y", reason: "z", lost: "", minimumKernel: "6.10"),
        ]
        var polling = PollingStatistics()
        polling.polls = 5
        polling.namespaces = 2
        let full = formatter.line(for: statistics, polling: polling)
        #expect(Array(Self.keys(full).suffix(10)) == ["via_tracepoints", "degraded", "mode", "polls", "namespaces", "namespace_errors",
                                                      "dump_errors", "dumps_interrupted", "late_polls", "cgroup_unknown"])
        #expect(!full.contains("minimum_kernel\":null") && full.contains(#""minimum_kernel":"6.10""#))
        let decoded = try Wire.decode(Wire.Stats.self, from: full)
        #expect(decoded == Wire.Stats(statistics, polling: polling))
        #expect(decoded.degraded == statistics.degradations && decoded.polling?.polls == 5)
    }

    @Test func subscriberMessagesRoundTrip() throws {
        let subscribed = SubscriberProtocol.subscribedLine(subscriber: 3, filter: "dport = :443", rules: ["a"], existingEnrolled: 2)
        #expect(subscribed == #"{"type":"subscribed","subscriber":3,"filter":"dport = :443","rules":["a"],"existing_enrolled":2}"#)
        #expect(try Wire.decode(Wire.Subscribed.self, from: subscribed)
            == Wire.Subscribed(subscriber: 3, filter: "dport = :443", rules: ["a"], existingEnrolled: 2))
        let stats = SubscriberProtocol.statsLine(subscriber: nil, delivered: 1, dropped: 2, queuedBytes: 3)
        #expect(stats == #"{"type":"stats","delivered":1,"dropped":2,"queued_bytes":3}"#)
        #expect(try Wire.decode(Wire.SubscriberStats.self, from: stats)
            == Wire.SubscriberStats(subscriber: nil, delivered: 1, dropped: 2, queuedBytes: 3))
        #expect(try Wire.decode(Wire.End.self, from: SubscriberProtocol.endLine(reason: "stopping", delivered: 9, dropped: 0))
            == Wire.End(reason: "stopping", delivered: 9, dropped: 0))
        #expect(try Wire.decode(Wire.Dropped.self, from: SubscriberProtocol.droppedLine(count: 2, total: 5)) == Wire.Dropped(count: 2, total: 5))
        #expect(try Wire.decode(Wire.ErrorReply.self, from: SubscriberProtocol.errorLine("no \"slot\"")).message == "no \"slot\"")
        #expect(Wire.line(Wire.StatsRequest()) == #"{"type":"stats"}"#)
        #expect(throws: Wire.DecodeError.self) { try Wire.decode(Wire.End.self, from: #"{"type":"end","reason":"x"}"#) }
    }

    /// `doctor --format json`: the documented keys in order, absent optionals left out, and it reads back.
    @Test func doctorReportRoundTrips() throws {
        var host = HostReport(kernel: "6.18.0")
        host.push = true
        host.checks = [HostCheck(name: "kernel BTF", status: .yes, detail: "/sys/kernel/btf/vmlinux", without: "not written"),
                       HostCheck(name: "sk_storage iterator", status: .no, detail: "EPERM",
                                 without: "the sweep walks TCP sockets", minimumKernel: "5.9")]
        host.missingFields = [TCPInfoField.allCases.last!]
        host.degradations = [Degradation(feature: "sweep", program: "sweep_enrolled", reason: "EPERM", lost: "nothing")]
        let report = Wire.DoctorReport(host, mode: host.pushSummary)
        let line = Wire.line(report)
        #expect(Self.keys(line) == ["kernel", "mode", "push", "checks", "missing_tcp_info_fields", "degraded"], "\(line)")
        #expect(line.contains(#"{"name":"kernel BTF","status":"yes","detail":"/sys/kernel/btf/vmlinux"}"#), "\(line)")
        #expect(line.contains(#""without":"the sweep walks TCP sockets","minimum_kernel":"5.9"}"#), "\(line)")
        #expect(line.contains(#""push":true"#), "\(line)")
        #expect(try Wire.decodeValue(Wire.DoctorReport.self, from: Array(line.utf8)) == report)
    }
}
