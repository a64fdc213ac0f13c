/// A verdict a flow got, and when: the detail view's recent history.
public struct TopVerdictChange: Sendable, Equatable {
    public var bottleneck: Bottleneck
    /// CLOCK_MONOTONIC ns when it was first judged.
    public var monotonicNanoseconds: UInt64
    /// How long the verdict before it held (nil for the first).
    public var previousHeldNanoseconds: UInt64?
}

/// What `tcpnotify top` keeps about one connection: its latest tcp_info, a few seconds of byte and
/// retransmission counters (for the rates), the rule that fired last and its verdicts.
struct TopFlow: Sendable {
    /// Throughput is measured over about this long.
    static let throughputWindowNanoseconds: UInt64 = 2_000_000_000
    /// "Recent" retransmissions: within this long.
    static let recentRetransmitNanoseconds: UInt64 = 10_000_000_000
    /// Samples closer together than this replace each other (a burst of records).
    static let sampleSpacingNanoseconds: UInt64 = 200_000_000
    static let historyLength = 8

    struct Counters: Sendable {
        var monotonicNanoseconds: UInt64
        var bytesMoved: UInt64
        var retransmits: UInt64
    }

    let local: Endpoint
    let remote: Endpoint
    let cgroupID: UInt64
    var owner: String?
    var info: TCPInfo
    var trigger: Trigger
    var lastSeenNanoseconds: UInt64
    var records: UInt64 = 0
    private(set) var counters: [Counters] = []
    var lastRule: String?
    var history: [TopVerdictChange] = []
    var closedAtNanoseconds: UInt64?

    init(_ notification: SocketNotification) {
        local = notification.local
        remote = notification.remote
        cgroupID = notification.cgroupID
        info = notification.info
        trigger = notification.trigger
        lastSeenNanoseconds = notification.monotonicNanoseconds
    }

    /// Takes a record (records from different CPUs may come slightly out of order: the newest wins).
    mutating func observe(_ notification: SocketNotification, firedRules: [String]) {
        records += 1
        if let rule = firedRules.last { lastRule = rule }
        let time = notification.monotonicNanoseconds
        guard time >= lastSeenNanoseconds || records == 1 else { return }
        info = notification.info
        trigger = notification.trigger
        lastSeenNanoseconds = time
        let sample = Counters(monotonicNanoseconds: time, bytesMoved: info[.bytesAcked] &+ info[.bytesReceived],
                              retransmits: info[.totalRetrans])
        if counters.count >= 2, time &- counters[counters.count - 2].monotonicNanoseconds < Self.sampleSpacingNanoseconds {
            counters[counters.count - 1] = sample
        } else {
            counters.append(sample)
        }
        // Keep the newest sample at or before the recent window's start: the base of its delta.
        let start = time > Self.recentRetransmitNanoseconds ? time - Self.recentRetransmitNanoseconds : 0
        if let base = counters.lastIndex(where: { $0.monotonicNanoseconds <= start }), base > 0 {
            counters.removeFirst(base)
        }
    }

    /// Bytes moved per second between the newest sample and the one about `throughputWindowNanoseconds`
    /// before it; 0 when the flow has said nothing for that long (records come at every sweep while it
    /// lives, so silence means nothing moved).
    func throughput(nowNanoseconds now: UInt64) -> Double {
        guard let newest = counters.last, now &- newest.monotonicNanoseconds < 2 * Self.throughputWindowNanoseconds else {
            return 0
        }
        let start = newest.monotonicNanoseconds &- Self.throughputWindowNanoseconds
        guard let base = counters.last(where: { $0.monotonicNanoseconds <= start }) ?? counters.first,
              newest.monotonicNanoseconds > base.monotonicNanoseconds, newest.bytesMoved >= base.bytesMoved else { return 0 }
        return Double(newest.bytesMoved - base.bytesMoved) * 1e9 / Double(newest.monotonicNanoseconds - base.monotonicNanoseconds)
    }

    /// Segments retransmitted within `recentRetransmitNanoseconds` (since the first sample, when younger).
    var recentRetransmits: UInt64 {
        guard let newest = counters.last, let base = counters.first, newest.retransmits >= base.retransmits else { return 0 }
        return newest.retransmits - base.retransmits
    }

    mutating func judged(_ change: TopVerdictChange) {
        history.append(change)
        if history.count > Self.historyLength { history.removeFirst(history.count - Self.historyLength) }
    }

    func row(cookie: UInt64, verdict: (Bottleneck, UInt64)?, nowNanoseconds now: UInt64) -> TopRow {
        var row = TopRow(cookie: cookie, local: local, remote: remote)
        row.owner = owner ?? "#\(cgroupID)"
        row.state = info.state
        row.isClosed = closedAtNanoseconds != nil
        if let (bottleneck, since) = verdict {
            row.verdict = bottleneck
            row.verdictHeldNanoseconds = now > since ? now - since : 0
        }
        row.srttMicroseconds = info[.rtt]
        row.minRTTMicroseconds = info[.minRtt]
        row.rttVarianceMicroseconds = info[.rttvar]
        row.congestionWindowSegments = info[.sndCwnd]
        row.deliveryRateBytesPerSecond = info[.deliveryRate]
        row.throughputBytesPerSecond = row.isClosed ? 0 : throughput(nowNanoseconds: now)
        row.retransmitsTotal = info[.totalRetrans]
        row.retransmitsRecent = recentRetransmits
        row.lastRule = lastRule
        return row
    }
}
