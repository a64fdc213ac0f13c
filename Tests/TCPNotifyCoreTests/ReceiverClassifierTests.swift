import Foundation
import Testing
@testable import TCPNotifyCore

/// The receiving end's classifier on the servers' series recorded in the lab (Fixtures/diagnosis/receiver-*)
/// and on synthetic series; which end a socket is; the receiver through the tracker and the formatter.
@Suite struct ReceiverClassifierTests {
    let classifier = BottleneckClassifier()

    struct RecordedCase: Sendable, CustomTestStringConvertible {
        var fixture: String
        var expected: Bottleneck
        var testDescription: String { "\(fixture) → \(expected)" }
    }

    /// The server sockets of the lab's scenarios (see Fixtures/diagnosis/README.md).
    static let recorded: [RecordedCase] = [
        RecordedCase(fixture: "receiver-application-limited", expected: .peerLimited),
        RecordedCase(fixture: "receiver-receiver-window-limited", expected: .readerLimited),
        RecordedCase(fixture: "receiver-stalled-reader", expected: .readerLimited),
        RecordedCase(fixture: "receiver-packet-loss", expected: .packetLoss),
        RecordedCase(fixture: "receiver-ipv6-packet-loss", expected: .packetLoss),
        // Drops at a full tbf queue: the receiver sees the holes (10–15 % out of order), not the queue.
        RecordedCase(fixture: "receiver-bufferbloat", expected: .packetLoss),
        RecordedCase(fixture: "receiver-network-limited", expected: .packetLoss),
        RecordedCase(fixture: "receiver-idle", expected: .idle),
        RecordedCase(fixture: "receiver-clean-fast-path", expected: .peerLimited),
        RecordedCase(fixture: "receiver-direct-clean-fast-path", expected: .peerLimited),
        RecordedCase(fixture: "receiver-direct-receiver-window-limited", expected: .readerLimited),
    ]

    @Test(arguments: recorded)
    func recordedReceiverGetsItsLabel(_ recorded: RecordedCase) throws {
        let fixture = try DiagnosisFixture(recorded.fixture)
        let diagnosis = classifier.diagnose(fixture.samples)
        #expect(diagnosis.end == .receiver)
        #expect(diagnosis.bottleneck == recorded.expected, "\(diagnosis.summary) \(diagnosis.evidence.items)")
        #expect((0...1).contains(diagnosis.confidence))
    }

    /// The clean fast path's receiver saw thousands of segments out of order (veth reordering across two
    /// CPUs), with no loss at all: the numbers that set the fast-path bar.
    @Test func reorderingOnAFastPathIsNotLoss() throws {
        let diagnosis = classifier.diagnose(try DiagnosisFixture("receiver-clean-fast-path").samples)
        #expect((diagnosis.evidence["ooo_segs"] ?? 0) > 1000, "\(diagnosis.evidence.items)")
        #expect((diagnosis.evidence["ooo_pct"] ?? 100) < 15)
        #expect(diagnosis.bottleneck != .packetLoss)
        #expect(diagnosis.signals.contains(.outOfOrder))
    }

    // MARK: - Which end

    @Test func theEndFollowsTheDirectionOfTheData() throws {
        #expect(FlowEnd.of(try DiagnosisFixture("receiver-window-limited").samples[...]) == .sender)
        #expect(FlowEnd.of(try DiagnosisFixture("receiver-receiver-window-limited").samples[...]) == .receiver)
        // A client that sent a request and now downloads: acked a little, received a lot.
        var info = TCPInfo()
        info[.bytesAcked] = 500
        info[.bytesReceived] = 1
        let before = DiagnosisSample(monotonicNanoseconds: 0, info: info)
        info[.bytesReceived] = 5_000_000
        let after = DiagnosisSample(monotonicNanoseconds: 1_000_000_000, info: info)
        #expect(FlowEnd.of([before, after][...]) == .receiver)
        // Nothing moved in the window: the connection's totals decide; nothing at all: a sender.
        #expect(FlowEnd.of([after, after][...]) == .receiver)
        #expect(FlowEnd.of([DiagnosisSample(monotonicNanoseconds: 0, info: TCPInfo())][...]) == .sender)
    }

    // MARK: - Synthetic receivers

    @Test func aZeroWindowIsAReaderThatStopped() {
        var flow = SyntheticReceiver()
        flow.run(.init(), times: 2)
        flow.run(.init(bytesPerSecond: 0, rcvWnd: 0), times: 4)
        let diagnosis = classifier.diagnose(flow.samples)
        #expect(diagnosis.bottleneck == .readerLimited, "\(diagnosis.summary)")
        #expect((diagnosis.evidence["zero_window_pct"] ?? 0) > 50)
        // Silent for longer than the window behind the zero window: still the reader.
        let silent = classifier.diagnose(flow.samples, nowMonotonicNanoseconds: flow.lastTime + 5_000_000_000)
        #expect(silent.bottleneck == .readerLimited && silent.end == .receiver, "\(silent.summary)")
    }

    @Test func aWindowHeldBelowItsCeilingIsASlowReader() {
        var flow = SyntheticReceiver()
        flow.run(.init(bytesPerSecond: 500_000, rcvWnd: 7_240), times: 8)
        let diagnosis = classifier.diagnose(flow.samples)
        #expect(diagnosis.bottleneck == .readerLimited, "\(diagnosis.summary)")
        #expect(diagnosis.summary.contains("reads slower"))
    }

    /// At its close the reader catches up and the window opens; those samples carry no arrivals and must
    /// not outvote the transfer (judged by samples, only 4 of 8 here are shrunk).
    @Test func aReaderCatchingUpAtTheEndIsStillTheReader() {
        var flow = SyntheticReceiver()
        flow.run(.init(bytesPerSecond: 500_000, rcvWnd: 7_240), times: 4)
        flow.run(.init(bytesPerSecond: 0, rcvWnd: 1 << 20), times: 3)
        let diagnosis = classifier.diagnose(flow.samples)
        #expect(diagnosis.bottleneck == .readerLimited, "\(diagnosis.summary) \(diagnosis.evidence.items)")
        #expect((diagnosis.evidence["shrunk_window_pct"] ?? 0) >= 80)
    }

    @Test func anOpenWindowFilledEveryRoundTripIsTooSmall() {
        // 6 MB/s × 10 ms = 60 kB per round trip through a 64 KiB window at its ceiling.
        var flow = SyntheticReceiver(ceiling: 65_536)
        flow.run(.init(bytesPerSecond: 6_000_000, rcvWnd: 65_536), times: 8)
        let diagnosis = classifier.diagnose(flow.samples)
        #expect(diagnosis.bottleneck == .receiverWindowLimited, "\(diagnosis.summary) \(diagnosis.evidence.items)")
        #expect((diagnosis.evidence["window_use_pct"] ?? 0) >= 80)
    }

    @Test func dataArrivingSlowerThanTheWindowAllowsIsThePeer() {
        var flow = SyntheticReceiver()
        flow.run(.init(bytesPerSecond: 500_000), times: 8)
        let diagnosis = classifier.diagnose(flow.samples)
        #expect(diagnosis.bottleneck == .peerLimited, "\(diagnosis.summary)")
        #expect(!diagnosis.bottleneck.isImpairment)
    }

    @Test func holesInTheStreamAreLossAboveTheReorderingBar() {
        // 10 % of segments out of order on a 20 ms path: loss.
        var lossy = SyntheticReceiver(rcvRTTMicroseconds: 20_000)
        lossy.run(.init(outOfOrderShare: 0.10), times: 8)
        let loss = classifier.diagnose(lossy.samples)
        #expect(loss.bottleneck == .packetLoss, "\(loss.summary)")
        #expect(loss.summary.contains("out of order"))
        // 3 % is reordering there; 10 % at a 1 ms rcv_rtt is reordering too (the fast-path bar is 15 %).
        var reordered = SyntheticReceiver(rcvRTTMicroseconds: 20_000)
        reordered.run(.init(outOfOrderShare: 0.03), times: 8)
        #expect(classifier.diagnose(reordered.samples).bottleneck == .peerLimited)
        var fast = SyntheticReceiver(rcvRTTMicroseconds: 1_000)
        fast.run(.init(bytesPerSecond: 100_000_000, outOfOrderShare: 0.10), times: 8)
        let fastDiagnosis = classifier.diagnose(fast.samples)
        #expect(fastDiagnosis.bottleneck == .peerLimited, "\(fastDiagnosis.summary)")
        #expect(fastDiagnosis.signals.contains(.outOfOrder))
    }

    @Test func nothingArrivingWithTheWindowOpenIsIdle() {
        var flow = SyntheticReceiver()
        flow.run(.init(), times: 2)
        flow.run(.init(bytesPerSecond: 0), times: 8)
        let diagnosis = classifier.diagnose(flow.samples)
        #expect(diagnosis.bottleneck == .idle && diagnosis.end == .receiver, "\(diagnosis.summary)")
    }

    @Test func tooFewSamplesAreInsufficientData() {
        var flow = SyntheticReceiver()
        flow.run(.init(seconds: 0.2), times: 2)
        #expect(classifier.diagnose(flow.samples).bottleneck == .insufficientData)
    }

    // MARK: - Through the tracker and the formatter

    @Test func theTrackerJudgesAReceiverAsOne() throws {
        let fixture = try DiagnosisFixture("receiver-receiver-window-limited")
        let tracker = DiagnosisTracker()
        for sample in fixture.samples { tracker.record(DiagnosisTrackerTests.notification(sample, cookie: 9)) }
        let diagnosis = try #require(tracker.diagnosis(cookie: 9))
        #expect(diagnosis.end == .receiver && diagnosis.bottleneck == .readerLimited)
        let report = DiagnosisReport(cookie: 9, local: DiagnosisTrackerTests.remote, remote: DiagnosisTrackerTests.local,
                                     isClosed: false, diagnosis: diagnosis)
        let line = DiagnosisFormatter(format: .json).text(for: report)
        #expect(line.contains(#""end":"receiver","bottleneck":"reader-limited""#), "\(line)")
        let decoded = try Wire.decode(Wire.DiagnosisLine.self, from: line)
        #expect(decoded.verdict.end == .receiver && decoded.verdict.bottleneck == .readerLimited, "reads back: \(line)")
        let text = DiagnosisFormatter(format: .text).text(for: report)
        #expect(text.contains("reader-limited (receiving end)") && text.contains("rcv_wnd"), "\(text)")
        #expect(Bottleneck.readerLimited.isImpairment)
    }
}

/// A receiving socket's tcp_info by the half second: bytes arriving, its advertised window and ceiling,
/// rcv_rtt and out-of-order segments.
struct SyntheticReceiver {
    private(set) var samples: [DiagnosisSample] = []
    private var info = TCPInfo()
    private var time: UInt64 = 1_000_000_000

    init(ceiling: UInt64 = 1 << 20, rcvRTTMicroseconds: UInt64 = 10_000) {
        info[.state] = UInt64(TCPState.established.rawValue)
        info[.rcvMss] = 1448
        info[.rcvSsthresh] = ceiling
        info[.rcvWnd] = ceiling
        info[.rcvRtt] = rcvRTTMicroseconds
        info[.bytesAcked] = 1
        samples.append(DiagnosisSample(monotonicNanoseconds: time, info: info))
    }

    struct Step {
        var seconds = 0.5
        var bytesPerSecond = 1_000_000.0
        var rcvWnd: UInt64?
        var outOfOrderShare = 0.0
    }

    mutating func run(_ step: Step, times: Int = 1) {
        for _ in 0..<times {
            time += UInt64(step.seconds * 1e9)
            let received = UInt64(step.bytesPerSecond * step.seconds)
            let segments = received / 1448
            info[.bytesReceived] += received
            info[.dataSegsIn] += segments
            info[.rcvOoopack] += UInt64(Double(segments) * step.outOfOrderShare)
            if let window = step.rcvWnd { info[.rcvWnd] = window }
            info[.lastDataRecv] = received > 0 ? 0 : info[.lastDataRecv] + UInt64(step.seconds * 1000)
            samples.append(DiagnosisSample(monotonicNanoseconds: time, info: info))
        }
    }

    var lastTime: UInt64 { time }
}
