import Foundation
import Testing
@testable import TCPNotifyCore

@Suite struct DiagnosisTimelineTests {
    static func notification(_ sample: DiagnosisSample, cookie: UInt64 = 1, trigger: Trigger = .rtt) -> SocketNotification {
        DiagnosisTrackerTests.notification(sample, cookie: cookie, trigger: trigger)
    }

    /// A connection enrolled in mid-life: 20 s held back by its receiver, then a sender busy 10 % of the
    /// time. Its first record is the baseline, so it is application-limited, not judged on lifetime totals.
    @Test func aFlowsFirstSampleIsTheBaseline() throws {
        var flow = SyntheticFlow()
        flow.run(.init(rwndShare: 0.9, sndWnd: 8192), times: 40)
        let enrolledAt = flow.samples.count - 1
        flow.run(.init(busyShare: 0.1, bytesPerSecond: 50_000, rateAppLimited: true, notsentBytes: 0, sndWnd: 1 << 20), times: 6)
        let seen = Array(flow.samples[enrolledAt...])
        let start = seen[0].monotonicNanoseconds - 700_000_000 // the command started 0.7 s before its first record
        let timeline = DiagnosisTimeline(startMonotonicNanoseconds: start)

        var outputs: [[DiagnosisTimeline.Output]] = []
        for sample in seen { outputs.append(timeline.record([Self.notification(sample)])) }
        #expect(outputs[0].isEmpty && outputs[1].isEmpty, "no verdict before a second of samples")
        guard case .verdict(let first)? = outputs[2].first else {
            Issue.record("no first verdict at the third sample: \(outputs)")
            return
        }
        #expect(first.kind == .first)
        #expect(first.report.diagnosis.bottleneck == .applicationLimited, "\(first.report.diagnosis.summary)")
        #expect(first.elapsedNanoseconds == 1_700_000_000, "judged 1 s after its baseline, 1.7 s after the start")
        #expect(first.report.diagnosis.evidence["rwnd_limited_pct"] == 0, "the 20 s before enrollment are not counted")
        #expect(outputs.dropFirst(3).allSatisfy { $0.isEmpty }, "no line while the verdict holds")

        // Judged on lifetime totals, the same flow would be receiver-window-limited.
        var lifetime = seen
        lifetime[0].info = TCPInfo()
        lifetime[0].info[.state] = UInt64(TCPState.established.rawValue)
        #expect(BottleneckClassifier().diagnose(lifetime).bottleneck == .receiverWindowLimited)
    }

    /// `every 500ms` records are stamped a few µs off the rule's clock: two intervals can measure 999.93 ms,
    /// which must give the verdict, not wait another 500 ms.
    @Test func aSecondLessAFewMicrosecondsIsASecond() throws {
        var flow = SyntheticFlow()
        flow.run(.init(seconds: 0.49996), times: 2)
        let timeline = DiagnosisTimeline(startMonotonicNanoseconds: flow.samples[0].monotonicNanoseconds)
        let outputs = flow.samples.flatMap { timeline.record([Self.notification($0)]) }
        #expect(outputs.count == 1, "\(outputs)")
        var short = SyntheticFlow()
        short.run(.init(seconds: 0.49), times: 2)
        #expect(BottleneckClassifier().diagnose(short.samples).bottleneck == .insufficientData, "0.98 s is not a second")
    }

    @Test func aChangeOfVerdictSaysWhatHeldAndForHowLong() throws {
        var flow = SyntheticFlow()
        flow.run(.init(busyShare: 0.1, bytesPerSecond: 50_000, rateAppLimited: true, notsentBytes: 0), times: 8)
        flow.run(.init(rwndShare: 0.9, sndWnd: 8192), times: 10)
        let start = flow.samples[0].monotonicNanoseconds
        let timeline = DiagnosisTimeline(startMonotonicNanoseconds: start)
        var updates: [VerdictUpdate] = []
        for sample in flow.samples.dropLast() {
            for case .verdict(let update) in timeline.record([Self.notification(sample)]) { updates.append(update) }
        }
        let kinds = updates.map { "\($0.kind.rawValue):\($0.report.diagnosis.bottleneck)" }
        #expect(kinds.first == "first:application-limited", "\(kinds)")
        let change = try #require(updates.first { $0.kind == .change }, "\(kinds)")
        #expect(change.report.diagnosis.bottleneck == .receiverWindowLimited, "\(kinds)")
        #expect(change.previous == .applicationLimited)
        let held = try #require(change.previousHeldNanoseconds)
        #expect(held >= 2_500_000_000 && held <= 5_000_000_000, "application-limited from 1 s until the window turned: \(held)")
        #expect(updates.filter { $0.kind == .change }.count == 1, "one change: \(kinds)")

        let closing = try #require(flow.samples.last)
        let outputs = timeline.record([Self.notification(closing, trigger: .close)])
        guard case .closed(let report, let summary)? = outputs.last else {
            Issue.record("no report at close: \(outputs)")
            return
        }
        #expect(report.isClosed)
        #expect(summary.observedNanoseconds == closing.monotonicNanoseconds - start)
        #expect(summary.firstVerdictMilliseconds == 1000)
        let shares = Dictionary(uniqueKeysWithValues: summary.verdictShares.map { ($0.bottleneck, $0.share) })
        #expect(Set(shares.keys) == [.applicationLimited, .receiverWindowLimited], "\(shares)")
        #expect(abs(shares.values.reduce(0, +) - 1) < 1e-9)
        #expect((0.5...0.7).contains(shares[.applicationLimited] ?? 0), "application-limited until 5.5 s of 9 s: \(shares)")
        #expect(summary.bytesAcked == closing.info[.bytesAcked] - flow.samples[0].info[.bytesAcked])
        #expect(summary.minRTTMicroseconds == 10_000 && summary.averageRTTMicroseconds == 10_000)
        #expect(timeline.openFlows.isEmpty && timeline.tracker.flowCount == 0, "a closed flow is forgotten")
    }

    /// A flow near a threshold: verdicts that alternate at every judgement make no lines; a new one
    /// judged twice in a row (`insufficient-data` between them aside) does, dated from its first judgement.
    @Test func aFlappingVerdictIsNotAChange() {
        var flow = FlowTimeline(
            first: DiagnosisSample(monotonicNanoseconds: 0, info: TCPInfo()),
            local: DiagnosisTrackerTests.local, remote: DiagnosisTrackerTests.remote)
        #expect(flow.judge(.insufficientData, at: 500) == nil)
        #expect(flow.judge(.networkLimited, at: 1000) == .first)
        #expect(flow.judge(.applicationLimited, at: 2000) == nil)
        #expect(flow.judge(.networkLimited, at: 3000) == nil)
        #expect(flow.judge(.applicationLimited, at: 4000) == nil)
        #expect(flow.judge(.insufficientData, at: 4500) == nil)
        #expect(flow.judge(.applicationLimited, at: 5000) == .changed(previous: .networkLimited, heldNanoseconds: 3000))
        #expect(flow.verdict == .applicationLimited)
        let shares = flow.summary(startNanoseconds: 0, end: 6000).verdictShares
        #expect(shares.map(\.bottleneck) == [.applicationLimited, .networkLimited, .insufficientData], "\(shares)")
        let expected: [Double] = [3.5 / 6, 2.0 / 6, 0.5 / 6]
        #expect(shares.map(\.share) == expected, "time as judged; the last second as shown")
    }

    @Test func intervalLinesComeOnlyForFlowsThatMovedData() {
        var moving = SyntheticFlow(), quiet = SyntheticFlow()
        moving.run(.init(), times: 4)
        quiet.run(.init(bytesPerSecond: 0, notsentBytes: 0, unacked: 0), times: 4)
        let timeline = DiagnosisTimeline(startMonotonicNanoseconds: moving.samples[0].monotonicNanoseconds)
        _ = timeline.record([Self.notification(moving.samples[0], cookie: 1)])
        _ = timeline.record([Self.notification(moving.samples[1], cookie: 1)])
        #expect(timeline.tick(nowMonotonicNanoseconds: moving.samples[1].monotonicNanoseconds, interval: true).isEmpty,
                "no interval line before the flow's first verdict")
        for (index, (a, b)) in zip(moving.samples, quiet.samples).enumerated() {
            _ = timeline.record((index < 2 ? [] : [Self.notification(a, cookie: 1)]) + [Self.notification(b, cookie: 2)])
        }
        let now = moving.lastTime + 100_000_000
        let lines = timeline.tick(nowMonotonicNanoseconds: now, interval: true)
        let intervals = lines.compactMap { output -> VerdictUpdate? in
            if case .verdict(let update) = output, update.kind == .interval { return update }
            return nil
        }
        #expect(intervals.map(\.report.cookie) == [1], "\(lines)")
        #expect(intervals.first?.heldNanoseconds == 1_100_000_000, "network-limited since its first verdict, 1 s after its first sample")
        #expect(timeline.tick(nowMonotonicNanoseconds: now + 1, interval: true).isEmpty, "nothing moved since")
        #expect(timeline.tick(nowMonotonicNanoseconds: now + 2, interval: false).isEmpty)
    }

    /// Records come only with events and sweeps: a flow silent for longer than the window is judged on
    /// that silence at a tick.
    @Test func aSilentFlowIsJudgedAtATick() throws {
        var flow = SyntheticFlow()
        flow.run(.init(notsentBytes: 0, unacked: 0), times: 4)
        let timeline = DiagnosisTimeline(startMonotonicNanoseconds: flow.samples[0].monotonicNanoseconds)
        for sample in flow.samples { _ = timeline.record([Self.notification(sample)]) }
        #expect(timeline.verdict(cookie: 1) == .networkLimited)
        #expect(timeline.tick(nowMonotonicNanoseconds: flow.lastTime + 1_000_000_000, interval: false).isEmpty)
        #expect(timeline.tick(nowMonotonicNanoseconds: flow.lastTime + 3_500_000_000, interval: false).isEmpty,
                "a new verdict is shown when judged twice in a row")
        let outputs = timeline.tick(nowMonotonicNanoseconds: flow.lastTime + 4_000_000_000, interval: false)
        guard case .verdict(let update)? = outputs.first else {
            Issue.record("no verdict on the silence: \(outputs)")
            return
        }
        #expect(update.kind == .change && update.previous == .networkLimited)
        #expect(update.report.diagnosis.bottleneck == .idle, "nothing in flight: \(update.report.diagnosis.summary)")
        let (report, summary) = try #require(timeline.finish(nowMonotonicNanoseconds: flow.lastTime + 5_000_000_000).first)
        #expect(!report.isClosed)
        #expect(summary.observedNanoseconds == 7_000_000_000)
    }

    @Test func linesAreJSONWithTheTimesAndTheLife() throws {
        var flow = SyntheticFlow()
        flow.run(.init(), times: 4)
        let timeline = DiagnosisTimeline(startMonotonicNanoseconds: flow.samples[0].monotonicNanoseconds)
        var first: VerdictUpdate?
        for sample in flow.samples {
            for case .verdict(let update) in timeline.record([Self.notification(sample)]) { first = first ?? update }
        }
        let formatter = DiagnosisFormatter(format: .json)
        var change = try #require(first)
        change.kind = .change
        change.previous = .applicationLimited
        change.previousHeldNanoseconds = 2_345_000_000
        let verdict = try Wire.decode(Wire.VerdictLine.self, from: formatter.jsonLine(for: change))
        #expect(verdict.event == .change)
        #expect(verdict.elapsedMs == 1000 && verdict.previousHeldMs == 2345)
        #expect(verdict.previous == .applicationLimited && verdict.verdict.bottleneck == .networkLimited)

        let (report, summary) = try #require(timeline.finish(nowMonotonicNanoseconds: flow.lastTime).first)
        let line = formatter.jsonLine(for: report, summary: summary)
        let final = try Wire.decode(Wire.DiagnosisLine.self, from: line)
        #expect(final.verdict.bottleneck == .networkLimited)
        let lifetime = try #require(final.lifetime, "\(line)")
        #expect(lifetime.firstVerdictMs == 1000)
        #expect(lifetime.verdicts.first { $0.bottleneck == .networkLimited }?.share == 1)
        #expect(lifetime.bytesAcked == 2_000_000 && lifetime.minRttUs == 10_000)
        let text = DiagnosisFormatter(format: .text).text(for: change)
        #expect(text.hasPrefix("+1 s 10.77.1.1:40001 -> 10.77.2.1:5001 changed: network-limited"), "\(text)")
    }

    @Test func impairmentsAreTheFixableLimits() {
        #expect(Bottleneck.allCases.filter(\.isImpairment)
            == [.receiverWindowLimited, .sendBufferLimited, .bufferbloat, .packetLoss, .readerLimited])
    }
}
