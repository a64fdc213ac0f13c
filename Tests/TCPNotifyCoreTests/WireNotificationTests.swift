import Testing
@testable import TCPNotifyCore

/// The hand-written notification writer (the hot path) against the Codable wire model: for a variety of
/// records, its line has the same bytes as `Wire.line` of the model and decodes back to the same value.
@Suite struct WireNotificationTests {
    static let v4Local = Endpoint(address: Array(repeating: 0, count: 10) + [0xff, 0xff, 10, 77, 1, 1], port: 40001)
    static let v4Remote = Endpoint(address: Array(repeating: 0, count: 10) + [0xff, 0xff, 10, 77, 2, 1], port: 5201)
    static let v6Local = Endpoint(address: [0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [1], port: 443)
    static let v6Remote = Endpoint(address: [0xfe, 0x80] + Array(repeating: 0, count: 13) + [2], port: 65535)

    static func record(trigger: Trigger, ipv6: Bool, seed: UInt64) -> SocketNotification {
        var values = [UInt64](repeating: 0, count: TCPInfoField.allCases.count)
        for field in TCPInfoField.allCases { values[Int(field.rawValue)] = seed &* 2_654_435_761 &+ UInt64(field.rawValue) }
        values[Int(TCPInfoField.state.rawValue)] = seed % 3 == 0 ? 99 : 1 // an unknown state is written as its number
        values[Int(TCPInfoField.caState.rawValue)] = seed % 5
        values[Int(TCPInfoField.rtt.rawValue)] = UInt64(UInt32.max)
        return SocketNotification(
            trigger: trigger, family: ipv6 ? 10 : 2, local: ipv6 ? v6Local : v4Local, remote: ipv6 ? v6Remote : v4Remote,
            cookie: seed == 0 ? UInt64.max : seed, cgroupID: UInt64.max - seed, monotonicNanoseconds: 123_456_789_012 + seed,
            rulesFired: UInt32(truncatingIfNeeded: seed) | 1, rulesTrue: 0, ruleGeneration: 1, oldState: UInt8(seed % 12),
            socketNotificationCount: seed, info: TCPInfo(values: values))
    }

    static let diagnosis = Diagnosis(
        bottleneck: .packetLoss, confidence: 0.87,
        evidence: DiagnosisEvidence(["retrans_rate": 0.0125, "busy_pct": 100, "rtt_us": 21_000]),
        signals: [.rttInflation], summary: "lost \"segments\"\nretransmitted")

    /// Every trigger, both families, all fields and an old kernel's fields, with and without cgroup
    /// attribution, rule names that need escaping and a verdict.
    static var cases: [(SocketNotification, NotificationFormatter, Diagnosis?)] {
        let oldKernel = TCPInfoFieldSet(missing: Set(TCPInfoField.allCases.filter { $0.sinceKernel != nil }))
        var cases: [(SocketNotification, NotificationFormatter, Diagnosis?)] = []
        for (index, trigger) in Trigger.allCases.enumerated() {
            for ipv6 in [false, true] {
                var formatter = NotificationFormatter(
                    format: .json, ruleNames: ["rtt > 50ms", "say \"hi\"\\\n", "é😀"], realtimeOffsetNanoseconds: 1_733_221_234_000_123_000)
                if index % 2 == 0 { formatter.kernelFields = oldKernel }
                if ipv6 { formatter.cgroupAttribution = { _ in CgroupAttribution(path: "/kubepods/pod1/abc", container: "abc", pod: "1") } }
                let seed = UInt64(index * 2 + (ipv6 ? 1 : 0))
                cases.append((record(trigger: trigger, ipv6: ipv6, seed: seed), formatter, index % 3 == 0 ? diagnosis : nil))
            }
        }
        return cases
    }

    @Test func handWriterMatchesTheWireModel() throws {
        for (record, formatter, diagnosis) in Self.cases {
            let line = formatter.jsonLine(for: record, diagnosis: diagnosis)
            let value = formatter.wireNotification(for: record, diagnosis: diagnosis)
            #expect(line == Wire.line(value), "\(record.trigger)")
            let decoded = try Wire.decode(Wire.Notification.self, from: line)
            #expect(decoded == value, "\(record.trigger) \(record.family): \(line)")
        }
    }

    @Test func decodedValuesAreTheRecordsValues() throws {
        for (record, formatter, diagnosis) in Self.cases {
            let decoded = try Wire.decode(Wire.Notification.self, from: formatter.jsonLine(for: record, diagnosis: diagnosis))
            #expect(decoded.trigger == record.trigger)
            #expect(decoded.src == record.local.description && decoded.dst == record.remote.description)
            #expect(decoded.family == (record.family == 10 ? "ipv6" : "ipv4"))
            #expect(decoded.cookie == record.cookie && decoded.cgroupID == record.cgroupID)
            #expect(decoded.tsMonoNs == record.monotonicNanoseconds)
            #expect(decoded.ts.microseconds == (Int64(record.monotonicNanoseconds) + formatter.realtimeOffsetNanoseconds) / 1000)
            #expect(decoded.rules == formatter.firedRuleNames(record))
            #expect((decoded.oldState != nil) == (record.trigger == .state || record.trigger == .close))
            #expect(decoded.diagnosis?.bottleneck == diagnosis?.bottleneck && decoded.diagnosis?.summary == diagnosis?.summary)
            let present = formatter.kernelFields.present
            #expect(decoded.tcpInfo.fields.map(\.name) == present.map(\.name))
            for field in present where field != .state && field != .caState {
                #expect(decoded.tcpInfo[field.name] == record.info[field], "\(field.name)")
            }
            var expected = TCPInfo()
            for field in present { expected[field] = record.info[field] }
            #expect(decoded.tcpInfo.info == expected)
        }
    }

    @Test func snapshotLinesDecode() throws {
        let formatter = NotificationFormatter(format: .json, ruleNames: [], realtimeOffsetNanoseconds: 0)
        let record = Self.record(trigger: .snapshot, ipv6: true, seed: 7)
        let snapshot = try Wire.decode(Wire.Snapshot.self, from: formatter.snapshotLine(for: record, networkNamespaceInode: 4_026_531_840))
        #expect(snapshot.netns == 4_026_531_840 && snapshot.src == record.local.description)
        #expect(snapshot.tcpInfo == Wire.TCPInfoObject(record.info))
    }

    @Test func badLinesGiveErrorsThatNameTheField() {
        let formatter = NotificationFormatter(format: .json, ruleNames: ["r"], realtimeOffsetNanoseconds: 0)
        let line = formatter.jsonLine(for: Self.record(trigger: .rtt, ipv6: false, seed: 1))
        func error(_ text: String) -> Wire.DecodeError? {
            do {
                _ = try Wire.decode(Wire.Notification.self, from: text)
                return nil
            } catch {
                return error
            }
        }
        #expect(error(line.replacing(#""cookie":1,"#, with: ""))?.message == #"missing "cookie""#)
        #expect(error(line.replacing(#""cookie":1,"#, with: #""cookie":"1","#))?.message == #""cookie" must be a non-negative integer"#)
        #expect(error(line.replacing(#""trigger":"rtt""#, with: #""trigger":"teleport""#))?.message.contains("unknown trigger 'teleport'") == true)
        let negative = error(line.replacing(#""rtt":"#, with: #""rtt":-"#))
        #expect(negative?.message.contains(#""tcp_info.rtt""#) == true, "\(String(describing: negative))")
        #expect(error(line.replacing(#""rtt":"#, with: #""rtt":"fast","x":"#))?.message == #""tcp_info.rtt" must be a non-negative integer"#)
        #expect(error(#"{"type":"stats"}"#)?.message == #"expected a "notification" line, got "stats""#)
        #expect(error("{\"type\":\"notification\"")?.isJSON == false)
        #expect(error("")?.isJSON == false)
        // A field this version does not know (a newer writer) is ignored.
        #expect(error(line.replacing(#""cookie":1,"#, with: #""cookie":1,"future":[1,{"x":2}],"#)) == nil)
    }
}
