import Testing
@testable import TCPNotifyCore

@Suite struct DiagnosisFormatterTests {
    static let report = DiagnosisReport(
        cookie: 4099, local: DiagnosisTrackerTests.local, remote: DiagnosisTrackerTests.remote, isClosed: true,
        diagnosis: Diagnosis(
            bottleneck: .receiverWindowLimited, confidence: 0.934,
            evidence: DiagnosisEvidence(["rwnd_limited_pct": 99.5, "busy_pct": 100, "rtt_over_min_rtt": 1.9712,
                                         "retrans_rate": 0.000123, "delivery_rate_bps": 84_200_123.4]),
            signals: [.zeroWindow],
            summary: "the receiver's window limited the sender 99% of the time it was busy"))

    @Test func jsonLineHasTheIssuesShape() throws {
        let line = DiagnosisFormatter(format: .json).text(for: Self.report)
        #expect(line == """
            {"type":"diagnosis","src":"10.77.1.1:40001","dst":"10.77.2.1:5001","cookie":4099,\
            "end":"sender","bottleneck":"receiver-window-limited","confidence":0.93,"evidence":{"rwnd_limited_pct":99.5,"busy_pct":100,\
            "rtt_over_min_rtt":1.97,"retrans_rate":0.000123,"delivery_rate_bps":84200123},"signals":["zero-window"],\
            "summary":"the receiver's window limited the sender 99% of the time it was busy"}
            """)
        // Read back: the numbers as written (rounded).
        let decoded = try Wire.decode(Wire.DiagnosisLine.self, from: line)
        #expect(decoded.verdict.confidence == 0.93 && decoded.verdict.evidence["rtt_over_min_rtt"] == 1.97)
        #expect(decoded.verdict.bottleneck == .receiverWindowLimited && decoded.cookie == 4099)
    }

    @Test func textReportIsReadable() {
        let text = DiagnosisFormatter(format: .text).text(for: Self.report)
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines.first == "10.77.1.1:40001 -> 10.77.2.1:5001 (cookie 4099, closed)")
        #expect(lines.contains("  receiver-window-limited, confidence 0.93"))
        #expect(lines.contains("  the receiver's window limited the sender 99% of the time it was busy"))
        #expect(lines.contains("  signals: zero-window"))
    }

    @Test func recordedDiagnosisIsValidJSON() throws {
        let diagnosis = BottleneckClassifier().diagnose(try DiagnosisFixture("packet-loss").samples)
        var report = Self.report
        report.diagnosis = diagnosis
        let line = try Wire.decode(Wire.DiagnosisLine.self, from: DiagnosisFormatter(format: .json).text(for: report))
        #expect(line.verdict.bottleneck == .packetLoss)
        #expect(line.verdict.evidence.items.map(\.name) .sorted() == diagnosis.evidence.names.sorted())
    }

    @Test(arguments: [
        (0.0, 2, "0"), (100.0, 2, "100"), (1.9712, 2, "1.97"), (0.5, 2, "0.5"), (0.000123, 6, "0.000123"),
        (-2.5, 1, "-2.5"), (-0.0001, 2, "0"), (Double.nan, 2, "0"), (1e300, 2, "9223372036854775807"),
    ])
    func numbers(value: Double, decimals: Int, expected: String) {
        #expect(DiagnosisNumber.json(value, decimals: decimals) == expected)
    }

    @Test func evidenceReplacesAndRemovesByName() {
        var evidence = DiagnosisEvidence(["a": 1, "b": 2])
        evidence["a"] = 3
        evidence["c"] = 4
        evidence["b"] = nil
        #expect(evidence.names == ["a", "c"])
        #expect(evidence["a"] == 3 && evidence["b"] == nil)
    }

    @Test func samplesDecodeFromNamedFields() throws {
        let sample = try #require(DiagnosisSample(
            monotonicNanoseconds: 5, numbers: ["rtt": 1200, "busy_time": 4000, "future_field": 1],
            names: ["state": "ESTABLISHED", "ca_state": "Recovery"]))
        #expect(sample.info[.rtt] == 1200 && sample.info[.busyTime] == 4000)
        #expect(sample.info.state == .established)
        #expect(sample.info[.caState] == UInt64(TCPCongestionState.recovery.rawValue))
        #expect(DiagnosisSample(monotonicNanoseconds: 5, numbers: [:], names: ["state": "NOT_A_STATE"]) == nil)
    }
}
