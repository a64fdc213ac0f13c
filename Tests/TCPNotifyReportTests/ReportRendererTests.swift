import Foundation
import TCPNotifyCore
@testable import TCPNotifyReport
import Testing

/// The report renderer without a kernel: synthetic records in, HTML out.
@Suite struct ReportRendererTests {
    static let start: UInt64 = 1_000_000_000_000

    /// A bulk flow: every 100 ms the counters move; `rwnd` makes it window-bound for the busy time.
    static func records(cookie: UInt64, port: UInt16, count: Int, everyNanoseconds: UInt64 = 100_000_000,
                        rwndLimited: Bool = false, retransmitEvery: Int = 0, close: Bool = false) -> [SocketNotification] {
        var info = TCPInfo()
        info[.state] = UInt64(TCPState.established.rawValue)
        info[.sndMss] = 1448
        info[.minRtt] = 10_000
        info[.sndCwnd] = 40
        info[.sndWnd] = 1 << 20
        return (0..<count).map { index in
            let step = UInt64(index)
            info[.rtt] = 10_000 + step % 7 * 1000
            info[.rttvar] = 2_000 + step % 3 * 500
            info[.unacked] = 30 + step % 10
            info[.deliveryRate] = 1_250_000 + step % 5 * 10_000
            info[.bytesAcked] = step * 125_000
            info[.bytesSent] = step * 125_000
            info[.busyTime] = step * everyNanoseconds / 1000
            info[.rwndLimited] = rwndLimited ? step * everyNanoseconds / 1000 * 9 / 10 : 0
            if retransmitEvery > 0 && index % retransmitEvery == 0 && index > 0 {
                info[.totalRetrans] += 1
                info[.bytesRetrans] += 1448
            }
            let isLast = close && index == count - 1
            return SocketNotification(
                trigger: isLast ? .close : .sweep, family: 2, local: Self.ipv4([10, 0, 0, 1], port: port),
                remote: Self.ipv4([10, 0, 0, 2], port: 5001), cookie: cookie, cgroupID: 7,
                monotonicNanoseconds: start + step * everyNanoseconds, rulesFired: 0, rulesTrue: 0, ruleGeneration: 0,
                oldState: 1, socketNotificationCount: step + 1, info: info)
        }
    }

    static func ipv4(_ octets: [UInt8], port: UInt16) -> Endpoint {
        Endpoint(address: [UInt8](repeating: 0, count: 10) + [0xff, 0xff] + octets, port: port)
    }

    static func render(_ recorder: ReportRecorder, end: UInt64, cgroup: String? = "/system.slice/app.service") -> String {
        ReportPage.html(recorder.document(nowMonotonicNanoseconds: end, title: "test report", context: ["tcpnotify diagnose"],
                                          cgroupPath: { _ in cgroup }))
    }

    static func occurrences(of needle: String, in text: String) -> Int {
        text.components(separatedBy: needle).count - 1
    }

    @Test func oneChartPerFlowWithEverySeries() {
        let recorder = ReportRecorder(startMonotonicNanoseconds: Self.start, judging: true)
        recorder.record(Self.records(cookie: 1, port: 40001, count: 60, rwndLimited: true))
        recorder.record(Self.records(cookie: 2, port: 40002, count: 60, retransmitEvery: 10, close: true))
        recorder.record(Self.records(cookie: 3, port: 40003, count: 30))
        let html = Self.render(recorder, end: Self.start + 7_000_000_000)
        #expect(Self.occurrences(of: "<svg class=\"flow-chart\"", in: html) == 3)
        #expect(Self.occurrences(of: "<section class=\"flow\"", in: html) == 3)
        #expect(Self.occurrences(of: "<tr class=\"flow-row\"", in: html) == 3)
        for flow in 1...3 {
            for series in ["srtt", "min-rtt", "rttvar", "cwnd", "in-flight", "delivery-rate", "goodput", "busy", "rwnd-limited", "sndbuf-limited"] {
                #expect(html.contains("id=\"flow-\(flow)-\(series)\""), "flow \(flow) lacks the \(series) series")
            }
        }
        #expect(html.contains("class=\"verdict-band verdict-receiver-window-limited\""), "the window-bound flow's verdict band")
        #expect(html.contains("class=\"mark mark-retransmit\""), "the retransmits of flow 2")
        #expect(html.contains("RTT (ms)") && html.contains("% of time") && html.contains("time since the command started (s)"))
        #expect(html.contains("(closed)"))
    }

    @Test func everyOutsideStringIsEscapedAndNothingIsFetched() {
        let recorder = ReportRecorder(startMonotonicNanoseconds: Self.start, judging: true)
        recorder.record(Self.records(cookie: 1, port: 40001, count: 20))
        let hostile = "/evil\"><script>alert('x')</script>&<img src=http://example.com/x>"
        let document = recorder.document(nowMonotonicNanoseconds: Self.start + 3_000_000_000, title: "<b>title</b>",
                                         context: ["--report a&b <c>"], cgroupPath: { _ in hostile })
        let html = ReportPage.html(document)
        #expect(!html.contains("<script"))
        #expect(!html.contains("<img"))
        #expect(!html.contains("<b>title</b>"))
        #expect(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&lt;img src=http://example.com/x&gt;"))
        #expect(html.contains("--report a&amp;b &lt;c&gt;"))
        // (the escaped hostile path is text, not a link: the only URLs are none at all)
        let withoutHostile = html.replacingOccurrences(of: HTMLText.escape(hostile), with: "")
        #expect(!withoutHostile.contains("http:") && !withoutHostile.contains("https:"))
        #expect(!html.contains(" src=\"") && !html.contains("<link"))
        #expect(html.contains("Content-Security-Policy"))
    }

    @Test func escapeHandlesEveryDangerousCharacter() {
        #expect(HTMLText.escape("a<b>&\"c'") == "a&lt;b&gt;&amp;&quot;c&#39;")
        #expect(HTMLText.escape("x\u{1b}[31my") == "x\u{FFFD}[31my")
        #expect(HTMLText.escape("tab\tok") == "tab\tok")
    }

    /// 1e5 records of one flow (and 1e5 more spread over many flows): the points and the page stay small.
    @Test func longRunsStayBounded() {
        let recorder = ReportRecorder(startMonotonicNanoseconds: Self.start)
        let records = Self.records(cookie: 1, port: 40001, count: 100_000, everyNanoseconds: 10_000_000, retransmitEvery: 50)
        for batch in stride(from: 0, to: records.count, by: 1000) { recorder.record(Array(records[batch..<batch + 1000])) }
        let limits = recorder.limits
        let document = recorder.document(nowMonotonicNanoseconds: Self.start + 1_000_000_000_000, title: "long")
        let points = document.flows[0].points
        #expect(points.count <= limits.pointsPerFlow + 1)
        #expect(points.count >= limits.pointsPerFlow / 2)
        #expect(points.last?.monotonicNanoseconds == records.last?.monotonicNanoseconds, "the chart reaches the last record")
        let html = ReportPage.html(document)
        #expect(html.utf8.count < 400_000, "\(html.utf8.count) bytes for one flow")
        #expect(document.flows[0].recordCount == 100_000)
    }

    @Test func flowsBeyondTheCapAreCountedAndNamed() {
        let recorder = ReportRecorder(limits: ReportLimits(flows: 4), startMonotonicNanoseconds: Self.start)
        for cookie in 1...10 as ClosedRange<UInt64> {
            recorder.record(Self.records(cookie: cookie, port: UInt16(40000 + cookie), count: 5))
        }
        let document = recorder.document(nowMonotonicNanoseconds: Self.start + 1_000_000_000, title: "cap")
        #expect(document.flows.map(\.cookie) == [1, 2, 3, 4])
        #expect(document.omittedFlows == 6)
        let html = ReportPage.html(document)
        #expect(html.contains("6 more flow(s) were left out: the report charts the first 4."))
        #expect(Self.occurrences(of: "<svg class=\"flow-chart\"", in: html) == 4)
    }

    @Test func verdictChangesBecomeBandsFromTheirFirstJudgement() {
        let recorder = ReportRecorder(startMonotonicNanoseconds: Self.start)
        let records = Self.records(cookie: 9, port: 40009, count: 80)
        recorder.record(records)
        func update(_ kind: VerdictUpdate.Kind, _ bottleneck: Bottleneck, at seconds: Double, previous: Bottleneck? = nil,
                    held: Double? = nil) -> DiagnosisTimeline.Output {
            let diagnosis = Diagnosis(bottleneck: bottleneck, confidence: 0.9, evidence: DiagnosisEvidence(), signals: [], summary: "why <not>")
            let report = DiagnosisReport(cookie: 9, local: records[0].local, remote: records[0].remote, isClosed: false, diagnosis: diagnosis)
            return .verdict(VerdictUpdate(kind: kind, report: report, elapsedNanoseconds: UInt64(seconds * 1e9), previous: previous,
                                          previousHeldNanoseconds: held.map { UInt64($0 * 1e9) }))
        }
        recorder.record([update(.first, .applicationLimited, at: 1), update(.change, .bufferbloat, at: 4.5, previous: .applicationLimited, held: 3)])
        let document = recorder.document(nowMonotonicNanoseconds: Self.start + 8_000_000_000, title: "bands")
        let spans = document.flows[0].verdicts
        #expect(spans.map(\.bottleneck) == [.applicationLimited, .bufferbloat])
        #expect(spans.map(\.startNanoseconds) == [Self.start + 1_000_000_000, Self.start + 4_000_000_000])
        let html = ReportPage.html(document)
        #expect(html.contains("verdict-band verdict-none"))
        #expect(html.contains("verdict-band verdict-application-limited"))
        #expect(html.contains("verdict-band verdict-bufferbloat"))
        #expect(Self.occurrences(of: "class=\"verdict-change\"", in: html) == 1)
        #expect(html.contains("why &lt;not&gt;"))
    }

    @Test func ticksAndScales() {
        #expect(ReportNumber.ticks(upTo: 7.3) == [0, 2, 4, 6, 8])
        #expect(ReportNumber.ticks(upTo: 100) == [0, 25, 50, 75, 100] || ReportNumber.ticks(upTo: 100) == [0, 50, 100])
        #expect(ReportNumber.ticks(upTo: 0) == [0, 0.5, 1] || ReportNumber.ticks(upTo: 0).last == 1)
        #expect(ReportNumber.niceStep(0.13) == 0.2)
        #expect(ReportNumber.tick(0.6000000001, step: 0.2) == "0.6")
        #expect(ReportNumber.fixed(-1.25, decimals: 1) == "-1.3" || ReportNumber.fixed(-1.25, decimals: 1) == "-1.2")
        #expect(ReportNumber.fixed(12.345, decimals: 2) == "12.35" || ReportNumber.fixed(12.345, decimals: 2) == "12.34")
        #expect(ReportNumber.coordinate(10) == "10")
        let scale = LinearScale(domain: 0...10, start: 100, end: 200)
        #expect(scale(5) == 150 && scale(-3) == 100 && scale(30) == 200 && scale(.nan) == 100)
    }
}
