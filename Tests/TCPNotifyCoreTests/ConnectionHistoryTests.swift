import Glibc
import Testing
@testable import TCPNotifyCore

/// `serve --history`'s store without a kernel: bounds, eviction order, verdict spans, retention, queries.
@Suite struct ConnectionHistoryTests {
    typealias History = ConnectionHistory<String, String>
    static let second: UInt64 = 1_000_000_000

    @Test func theLeastRecentlyUpdatedConnectionIsEvictedFirst() {
        var history = History(limits: .init(maximumConnections: 3, maximumVerdicts: 4, retentionNanoseconds: 60 * Self.second))
        for cookie in UInt64(1)...3 { history.record("r\(cookie)", cookie: cookie, isClose: false, nowNanoseconds: cookie * Self.second) }
        history.record("r1 again", cookie: 1, isClose: false, nowNanoseconds: 4 * Self.second) // 2 is now the stalest
        history.record("r4", cookie: 4, isClose: false, nowNanoseconds: 5 * Self.second)
        #expect(history.all.map(\.cookie) == [1, 3, 4])
        #expect(history.counters.evictedConnections == 1)
        #expect(history.entry(cookie: 1)?.lastRecord == "r1 again")
        history.record("r5", cookie: 5, isClose: false, nowNanoseconds: 6 * Self.second)
        #expect(history.all.map(\.cookie) == [1, 4, 5])
        #expect(history.counters.evictedConnections == 2)
        #expect(history.count == 3)
    }

    @Test func verdictsMakeSpansAndTheOldestGoBeyondTheBound() {
        var history = History(limits: .init(maximumConnections: 8, maximumVerdicts: 2))
        history.record("r", cookie: 7, isClose: false, nowNanoseconds: 1)
        for (time, verdict) in [(UInt64(1), "idle"), (2, "idle"), (3, "packet-loss"), (4, "bufferbloat"), (5, "bufferbloat")] {
            history.verdict(verdict, cookie: 7, nowNanoseconds: time, same: ==)
        }
        let entry = history.entry(cookie: 7)
        #expect(entry?.verdicts.map(\.verdict) == ["packet-loss", "bufferbloat"])
        #expect(entry?.verdicts.last?.count == 2)
        #expect(entry?.verdicts.last?.firstNanoseconds == 4 && entry?.verdicts.last?.lastNanoseconds == 5)
        #expect(entry?.droppedVerdicts == 1 && history.counters.evictedVerdicts == 1)
        history.verdict("idle", cookie: 99, nowNanoseconds: 6, same: ==) // never recorded: ignored
        #expect(history.entry(cookie: 99) == nil)
    }

    @Test func closedConnectionsExpireAfterTheRetentionOpenOnesNever() {
        var history = History(limits: .init(maximumConnections: 8, maximumVerdicts: 2, retentionNanoseconds: 10 * Self.second))
        history.record("open", cookie: 1, isClose: false, nowNanoseconds: 0)
        history.record("closing", cookie: 2, isClose: false, nowNanoseconds: 0)
        history.record("closed", cookie: 2, isClose: true, nowNanoseconds: 5 * Self.second)
        history.expire(nowNanoseconds: 14 * Self.second)
        #expect(history.entry(cookie: 2)?.closedNanoseconds == 5 * Self.second)
        history.expire(nowNanoseconds: 15 * Self.second)
        #expect(history.entry(cookie: 2) == nil && history.entry(cookie: 1) != nil)
        #expect(history.counters.expiredConnections == 1)
        history.expire(nowNanoseconds: 1000 * Self.second)
        #expect(history.count == 1)
    }

    @Test func queriesParseOnTheSubscriberSocket() {
        #expect(SubscriberProtocol.parse(Array(#"{"type":"connections"}"#.utf8)) == .success(.connections(ConnectionQuery())))
        #expect(SubscriberProtocol.parse(Array(#"{"type":"connections","cookie":4099}"#.utf8)) == .success(.connections(ConnectionQuery(cookie: 4099))))
        for bad in [#"{"type":"connections","cookie":"x"}"#, #"{"type":"connections","cookie":-1}"#, #"{"type":"connections","cookie":1.5}"#] {
            guard case .failure(let error) = SubscriberProtocol.parse(Array(bad.utf8)) else {
                Issue.record("\(bad) accepted")
                continue
            }
            #expect(error.message.contains("cookie") && !error.closesConnection, "\(error)")
        }
        guard case .failure(let error) = SubscriberProtocol.parse(Array(#"{"type":"connections","cokie":1}"#.utf8)) else {
            Issue.record("an unknown field accepted")
            return
        }
        #expect(error.message.contains("cokie"))
    }

    @Test func cookiesInPathsAreDecimalNumbers() {
        #expect(ConnectionQuery.cookie(fromPath: "4099") == 4099)
        #expect(ConnectionQuery.cookie(fromPath: "18446744073709551615") == UInt64.max)
        for bad in ["", "x", "-1", "+1", "0x10", "18446744073709551616", "1 "] {
            #expect(ConnectionQuery.cookie(fromPath: Substring(bad)) == nil, "\(bad)")
        }
    }
}


/// The README's memory figure for `serve --history`'s defaults: the growth of the resident set while full.
@Suite struct ConnectionHistoryMemoryTests {
    static func verdict(_ index: Int) -> Diagnosis {
        var evidence = DiagnosisEvidence()
        for name in ["busy_pct", "rwnd_limited_pct", "sndbuf_limited_pct", "app_limited_pct", "srtt_us", "min_rtt_us",
                     "queue_delay_us", "retrans_pct", "delivery_rate_bps", "window_s"] {
            evidence[name] = Double(index)
        }
        return Diagnosis(
            bottleneck: Bottleneck.allCases[index % Bottleneck.allCases.count], confidence: 0.8,
            evidence: evidence,
            signals: [.rttInflation],
            summary: "the sender was busy 99% of the time and the receiver's window limited it 97% of that time (\(index))")
    }

    /// Resident set size from /proc/self/statm (the allocator's counters are not visible from Swift).
    static func residentBytes() -> Int {
        let fd = open("/proc/self/statm", O_RDONLY)
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 128)
        let count = read(fd, &buffer, buffer.count)
        let fields = String(decoding: buffer.prefix(max(count, 0)), as: UTF8.self).split(separator: " ")
        return (fields.count > 1 ? Int(fields[1]) ?? 0 : 0) * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    @Test func theDefaultBoundsHoldUnderThirtyTwoMebibytes() {
        let before = Self.residentBytes()
        var history = ConnectionHistory<SocketNotification, Diagnosis>(limits: .init())
        let limits = history.limits
        for cookie in 0..<UInt64(limits.maximumConnections) {
            let record = SocketNotification(
                trigger: .sweep, family: 2, local: Endpoint(address: Array(repeating: 1, count: 16), port: 1),
                remote: Endpoint(address: Array(repeating: 2, count: 16), port: 2), cookie: cookie, cgroupID: 1,
                monotonicNanoseconds: cookie, rulesFired: 1, rulesTrue: 1, ruleGeneration: 1, oldState: 1,
                socketNotificationCount: 1, info: TCPInfo())
            history.record(record, cookie: cookie, isClose: false, nowNanoseconds: cookie)
            for index in 0..<limits.maximumVerdicts {
                history.verdict(Self.verdict(index), cookie: cookie, nowNanoseconds: cookie) { $0.bottleneck == $1.bottleneck }
            }
        }
        let bytes = Self.residentBytes() - before
        let perConnection = bytes / limits.maximumConnections
        print("history: \(limits.maximumConnections) connections x \(limits.maximumVerdicts) verdicts = \(bytes >> 10) KiB, \(perConnection) B per connection")
        #expect(history.count == limits.maximumConnections)
        #expect(bytes < 32 << 20, "\(bytes) bytes")
    }
}
