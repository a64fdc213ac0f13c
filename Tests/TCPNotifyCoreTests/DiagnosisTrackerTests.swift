import Testing
@testable import TCPNotifyCore

@Suite struct DiagnosisTrackerTests {
    static let local = Endpoint(address: Array(repeating: 0, count: 10) + [0xff, 0xff, 10, 77, 1, 1], port: 40001)
    static let remote = Endpoint(address: Array(repeating: 0, count: 10) + [0xff, 0xff, 10, 77, 2, 1], port: 5001)

    static func notification(_ sample: DiagnosisSample, cookie: UInt64, trigger: Trigger = .rtt) -> SocketNotification {
        SocketNotification(
            trigger: trigger, family: 2, local: local, remote: remote, cookie: cookie, cgroupID: 1,
            monotonicNanoseconds: sample.monotonicNanoseconds, rulesFired: 1, rulesTrue: 1, ruleGeneration: 1,
            oldState: 0, socketNotificationCount: 1, info: sample.info)
    }

    @Test func recordsNotificationsPerCookie() throws {
        let tracker = DiagnosisTracker()
        var receiverLimited = SyntheticFlow(), sendBufferLimited = SyntheticFlow()
        receiverLimited.run(.init(rwndShare: 0.9, sndWnd: 8192), times: 8)
        sendBufferLimited.run(.init(sndbufShare: 0.9), times: 8)
        for (first, second) in zip(receiverLimited.samples, sendBufferLimited.samples) {
            tracker.record(Self.notification(first, cookie: 1))
            tracker.record(Self.notification(second, cookie: 2))
        }
        #expect(tracker.diagnosis(cookie: 1)?.bottleneck == .receiverWindowLimited)
        #expect(tracker.diagnosis(cookie: 2)?.bottleneck == .sendBufferLimited)
        #expect(tracker.diagnosis(cookie: 3) == nil)
        let report = try #require(tracker.report(cookie: 1))
        #expect(report.local == Self.local && report.remote == Self.remote && !report.isClosed)
        #expect(tracker.reports().map(\.cookie) == [1, 2], "in the order flows were first seen")
    }

    @Test func agreesWithTheClassifierOnARecordedFlow() throws {
        let fixture = try DiagnosisFixture("bufferbloat")
        let tracker = DiagnosisTracker()
        for sample in fixture.samples { tracker.record(Self.notification(sample, cookie: 7)) }
        #expect(tracker.diagnosis(cookie: 7) == BottleneckClassifier().diagnose(fixture.samples))
    }

    @Test func keepsOnlyWhatTheWindowNeeds() {
        let tracker = DiagnosisTracker()
        var flow = SyntheticFlow()
        flow.run(.init(seconds: 0.01), times: 6000) // a minute of records every 10 ms
        for sample in flow.samples { tracker.record(Self.notification(sample, cookie: 1)) }
        // About one sample per 50 ms over 3 s (a kept sample is replaced until the next is 50 ms on), not 6000.
        #expect(tracker.sampleCount(cookie: 1) <= 80)
        #expect(tracker.diagnosis(cookie: 1)?.evidence["window_s"].map { $0 >= 2.9 && $0 <= 3.1 } == true)
    }

    @Test func closeMarksTheFlowAndOldClosedFlowsAreDropped() throws {
        let tracker = DiagnosisTracker(closedFlowRetentionNanoseconds: 1_000_000_000)
        var flow = SyntheticFlow()
        flow.run(.init(), times: 4)
        for sample in flow.samples.dropLast() { tracker.record(Self.notification(sample, cookie: 1)) }
        let closing = try #require(flow.samples.last)
        tracker.record(Self.notification(closing, cookie: 1, trigger: .close))
        #expect(tracker.report(cookie: 1)?.isClosed == true)

        // Another flow's records, long after: the sweep (every 1024 records) drops the closed one.
        var other = SyntheticFlow()
        other.run(.init(seconds: 0.06), times: 1100)
        let shift = closing.monotonicNanoseconds + 2_000_000_000
        for var sample in other.samples {
            sample.monotonicNanoseconds += shift
            tracker.record(Self.notification(sample, cookie: 2))
        }
        #expect(tracker.report(cookie: 1) == nil)
        #expect(tracker.flowCount == 1)
    }

    @Test func forgetAndFlowLimit() {
        let tracker = DiagnosisTracker(maximumFlows: 2)
        var flow = SyntheticFlow()
        flow.run(.init(), times: 2)
        for cookie in UInt64(1)...3 {
            for var sample in flow.samples {
                sample.monotonicNanoseconds += cookie * 10_000_000
                tracker.record(Self.notification(sample, cookie: cookie))
            }
        }
        #expect(tracker.flowCount == 2)
        #expect(tracker.report(cookie: 1) == nil, "the least recently updated flow goes first")
        #expect(tracker.evictedFlowCount >= 1, "each eviction counted (a new flow older than the others is evicted again at once)")
        #expect(!tracker.holds(cookie: 1) && tracker.holds(cookie: 3))
        tracker.forget(cookie: 3)
        #expect(tracker.flowCount == 1)
    }

    @Test func outOfOrderRecordsAreSorted() {
        let tracker = DiagnosisTracker()
        var flow = SyntheticFlow()
        flow.run(.init(), times: 8)
        var samples = flow.samples
        samples.swapAt(3, 4)
        for sample in samples { tracker.record(Self.notification(sample, cookie: 1)) }
        #expect(tracker.diagnosis(cookie: 1) == BottleneckClassifier().diagnose(flow.samples))
    }
}
