import Testing
@testable import TCPNotifyCore

/// `tcpnotify top`'s frame model without a terminal: sorting, the layout at 80 columns and wider,
/// truncation, the model fed by records, and the keys.
struct TopFrameTests {
    static func endpoint(_ last: UInt8, _ port: UInt16) -> Endpoint {
        Endpoint(address: Array(repeating: 0, count: 10) + [0xff, 0xff, 10, 0, 0, last], port: port)
    }

    static func row(_ cookie: UInt64, throughput: Double, srtt: UInt64, verdict: Bottleneck? = .networkLimited) -> TopRow {
        var row = TopRow(cookie: cookie, local: endpoint(1, UInt16(40000 + cookie)), remote: endpoint(2, 443))
        row.throughputBytesPerSecond = throughput
        row.srttMicroseconds = srtt
        row.verdict = verdict
        row.verdictHeldNanoseconds = 12_000_000_000
        row.state = .established
        row.owner = "nginx.service"
        return row
    }

    @Test func sortingByAColumnAndReversingIt() {
        let rows = [Self.row(1, throughput: 10, srtt: 900), Self.row(2, throughput: 5_000_000, srtt: 50), Self.row(3, throughput: 10, srtt: 70)]
        #expect(TopSort(column: .throughput).sorted(rows).map(\.cookie) == [2, 1, 3], "busiest first; ties by cookie")
        #expect(TopSort(column: .srtt).sorted(rows).map(\.cookie) == [1, 3, 2], "slowest first")
        #expect(TopSort(column: .srtt, descending: false).sorted(rows).map(\.cookie) == [2, 3, 1])
        #expect(TopSort(column: .local).sorted(rows).map(\.cookie) == [1, 2, 3], "text ascending by default")
    }

    @Test func eightyColumnsHoldTheEssentialColumnsAndNoLineIsWider() {
        var long = Self.row(7, throughput: 1.2e9, srtt: 1_234_567)
        long.local = Endpoint(address: [0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0xab, count: 12), port: 65535)
        long.lastRule = "a_rule_name_that_is_far_too_long"
        let rows = [Self.row(1, throughput: 100, srtt: 40), long]
        let frame = TopFrame(width: 80, height: 24)
        let lines = frame.table(rows: rows, total: 2, status: TopStatus(), view: TopView())
        #expect(lines.count == 24)
        for line in lines { #expect(line.text.count <= 80, "\(line.text.count): \(line.text)") }
        let header = lines[3].text
        for title in ["LOCAL", "REMOTE", "VERDICT", "THRU", "SRTT", "HELD", "RETX"] { #expect(header.contains(title), "\(header)") }
        #expect(!header.contains("CGROUP") && !header.contains("RULE"), "the least important columns go first: \(header)")
        // The IPv6 endpoint is cut, and says so.
        let ipv6Line = lines.first { $0.text.contains("2001:") }?.text ?? ""
        #expect(ipv6Line.contains("~"), "\(ipv6Line)")
        #expect(ipv6Line.contains("1.2G") && ipv6Line.contains("1.2s") && ipv6Line.contains("network"), "\(ipv6Line)")
        #expect(lines.last?.text.contains("q: quit") == true)
    }

    @Test func widerTerminalsShowMoreColumns() {
        let rows = [Self.row(1, throughput: 100, srtt: 40)]
        let narrow = TopLayout(width: 80, rows: rows).columns
        let wide = TopLayout(width: 200, rows: rows).columns
        #expect(wide == TopColumn.allCases, "\(wide)")
        #expect(narrow.count < wide.count)
        let line = TopLayout(width: 200, rows: rows).line(for: rows[0])
        #expect(line.contains("nginx.service") && line.contains("ESTAB"), "\(line)")
    }

    @Test func aLongTableScrollsToTheSelectedRow() {
        let rows = (1...40).map { Self.row(UInt64($0), throughput: Double($0), srtt: 10) }
        var view = TopView()
        view.selectedCookie = 1 // the slowest: last when sorted by throughput
        let lines = TopFrame(width: 80, height: 24).table(rows: rows, total: 40, status: TopStatus(), view: view)
        #expect(lines.count == 24)
        #expect(lines.contains { $0.style == .selected && $0.text.hasPrefix("10.0.0.1:40001 ") }, "\(lines.map(\.text))")
    }

    @Test func textsFitTheirCells() {
        #expect(TopText.fit("abcdef", 4) == "abc~")
        #expect(TopText.fit("ab", 4, rightAligned: true) == "  ab")
        #expect(TopText.rate(bytesPerSecond: 999_999) == "1.0M")
        #expect(TopText.rate(bytesPerSecond: 12_345) == "12k")
        #expect(TopText.microseconds(45) == "45us" && TopText.microseconds(1_500) == "1.5ms")
        #expect(TopText.held(nanoseconds: 725_000_000_000) == "12m05s")
        #expect(TopText.count(123_456_789) == "123M")
    }

    @Test func keysSortFilterSelectAndQuit() {
        let rows = [Self.row(1, throughput: 10, srtt: 900), Self.row(2, throughput: 20, srtt: 50)]
        let columns = TopLayout(width: 80, rows: rows).columns
        var view = TopView()
        _ = view.handle(.character("r"), rows: rows, columns: columns)
        #expect(view.sort == TopSort(column: .srtt, descending: true))
        _ = view.handle(.character("r"), rows: rows, columns: columns)
        #expect(view.sort == TopSort(column: .srtt, descending: false), "the same letter again reverses")
        _ = view.handle(.character("<"), rows: rows, columns: columns)
        #expect(view.sort.column == columns[columns.firstIndex(of: .srtt)! - 1])
        for key: TopKey in [.character("/"), .character("d"), .character("p"), .character("o"), .character("r"), .character("t"),
                            .character(" "), .character("="), .character(" "), .character(":"), .character("4"), .character("4"),
                            .character("3"), .enter] {
            _ = view.handle(key, rows: rows, columns: columns)
        }
        #expect(view.filterText == "dport = :443" && view.filter != nil, "\(view.filterText)")
        for key: TopKey in [.character("/"), .character("x"), .enter] { _ = view.handle(key, rows: rows, columns: columns) }
        #expect(view.filterText == "dport = :443x".dropLast().description, "a bad filter keeps the old one")
        #expect(view.message?.hasPrefix("invalid filter") == true, "\(view.message ?? "")")
        _ = view.handle(.down, rows: rows, columns: columns)
        _ = view.handle(.enter, rows: rows, columns: columns)
        #expect(view.detailCookie == rows[0].cookie)
        _ = view.handle(.escape, rows: rows, columns: columns)
        #expect(view.detailCookie == nil)
        #expect(view.handle(.character("p"), rows: rows, columns: columns) == .redraw && view.paused)
        #expect(view.handle(.character("q"), rows: rows, columns: columns) == .quit)
    }

    /// Records in, rows out: the throughput from the byte counters, recent retransmits, the rule that fired
    /// (not the sampling rule), the verdict once the window has enough samples, and the detail.
    @Test func theModelTurnsRecordsIntoRows() throws {
        let model = TopModel(startMonotonicNanoseconds: 1_000_000_000) { _ in "app.service" }
        let names = ["srtt_high", TopModel.samplingRuleName]
        var info = TCPInfo()
        info[.state] = UInt64(TCPState.established.rawValue)
        info[.rtt] = 2_000
        info[.minRtt] = 1_000
        info[.sndCwnd] = 10
        for step in 0...10 {
            let time = 1_000_000_000 + UInt64(step) * 500_000_000
            info[.bytesAcked] = UInt64(step) * 5_000_000 // 10 MB/s
            info[.bytesSent] = info[.bytesAcked]
            info[.busyTime] = UInt64(step) * 500_000
            info[.totalRetrans] = step >= 8 ? 3 : 0
            let notification = SocketNotification(
                trigger: .sweep, family: 2, local: Self.endpoint(1, 40001), remote: Self.endpoint(2, 443), cookie: 77, cgroupID: 5,
                monotonicNanoseconds: time, rulesFired: step == 4 ? 0b11 : 0b10, rulesTrue: 0b10, ruleGeneration: 1, oldState: 1,
                socketNotificationCount: UInt64(step + 1), info: info)
            model.record([notification]) { _ in names }
        }
        let now: UInt64 = 6_100_000_000
        let (rows, total) = model.rows(nowMonotonicNanoseconds: now)
        #expect(total == 1)
        let row = try #require(rows.first)
        #expect(abs(row.throughputBytesPerSecond - 10_000_000) < 1, "\(row.throughputBytesPerSecond)")
        #expect(row.retransmitsTotal == 3 && row.retransmitsRecent == 3)
        #expect(row.lastRule == "srtt_high")
        #expect(row.owner == "app.service")
        #expect(row.verdict != nil, "a verdict after 5 s of samples")
        let detail = try #require(model.detail(cookie: 77, nowMonotonicNanoseconds: now))
        let lines = TopFrame(width: 80, height: nil).detail(detail, status: TopStatus(), view: TopView(), total: 1, startNanoseconds: 0)
        #expect(lines.contains { $0.text.contains("snd_cwnd 10") }, "\(lines.map(\.text))")
        #expect(lines.contains { $0.text.hasPrefix("verdict: ") })
        for line in lines { #expect(line.text.count <= 80, "\(line.text)") }
        // A view filter that does not match hides it.
        let filtered = model.rows(nowMonotonicNanoseconds: now, filter: try FilterExpression.compile("dport = :80"))
        #expect(filtered.rows.isEmpty && filtered.total == 1)
    }
}
