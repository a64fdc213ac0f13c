import TCPNotifyCore

/// The few `tcp_info` numbers a flow's charts need, from one record: gauges as they are, cumulative
/// counters as they are (rates and shares come from the deltas between consecutive points, so they
/// survive decimation). About 120 bytes instead of a whole `TCPInfo`.
public struct ReportPoint: Sendable, Equatable {
    public var monotonicNanoseconds: UInt64
    public var srttMicroseconds: UInt64
    public var minRTTMicroseconds: UInt64
    public var rttvarMicroseconds: UInt64
    public var congestionWindowPackets: UInt64
    /// unacked − (sacked + lost) + retrans, as the kernel's `tcp_packets_in_flight`.
    public var packetsInFlight: UInt64
    public var deliveryRateBytesPerSecond: UInt64
    // Cumulative counters.
    public var totalRetransmits: UInt64
    public var totalTimeouts: UInt64
    public var busyMicroseconds: UInt64
    public var receiverWindowLimitedMicroseconds: UInt64
    public var sendBufferLimitedMicroseconds: UInt64
    /// Bytes acknowledged to this end plus bytes received by it: data moved either way.
    public var bytesMoved: UInt64

    public init(monotonicNanoseconds: UInt64, info: TCPInfo) {
        self.monotonicNanoseconds = monotonicNanoseconds
        srttMicroseconds = info[.rtt]
        minRTTMicroseconds = info[.minRtt]
        rttvarMicroseconds = info[.rttvar]
        congestionWindowPackets = info[.sndCwnd]
        let outstanding = info[.unacked] &+ info[.retrans], left = info[.sacked] &+ info[.lost]
        packetsInFlight = outstanding > left ? outstanding - left : 0
        deliveryRateBytesPerSecond = info[.deliveryRate]
        totalRetransmits = info[.totalRetrans]
        totalTimeouts = info[.totalRto]
        busyMicroseconds = info[.busyTime]
        receiverWindowLimitedMicroseconds = info[.rwndLimited]
        sendBufferLimitedMicroseconds = info[.sndbufLimited]
        bytesMoved = info[.bytesAcked] &+ info[.bytesReceived]
    }
}

/// What happened between two consecutive points: rates and shares of the interval, marks at its end.
struct ReportInterval {
    var endNanoseconds: UInt64
    var busyShare: Double
    var receiverWindowLimitedShare: Double
    var sendBufferLimitedShare: Double
    var goodputBytesPerSecond: Double
    var retransmits: UInt64
    var timeouts: UInt64

    init(from previous: ReportPoint, to point: ReportPoint) {
        endNanoseconds = point.monotonicNanoseconds
        let spanMicroseconds = Double(point.monotonicNanoseconds &- min(previous.monotonicNanoseconds, point.monotonicNanoseconds)) / 1000
        func delta(_ key: KeyPath<ReportPoint, UInt64>) -> UInt64 {
            point[keyPath: key] >= previous[keyPath: key] ? point[keyPath: key] - previous[keyPath: key] : 0
        }
        func share(_ key: KeyPath<ReportPoint, UInt64>) -> Double {
            spanMicroseconds > 0 ? min(Double(delta(key)) / spanMicroseconds, 1) : 0
        }
        busyShare = share(\.busyMicroseconds)
        receiverWindowLimitedShare = share(\.receiverWindowLimitedMicroseconds)
        sendBufferLimitedShare = share(\.sendBufferLimitedMicroseconds)
        goodputBytesPerSecond = spanMicroseconds > 0 ? Double(delta(\.bytesMoved)) / (spanMicroseconds / 1e6) : 0
        retransmits = delta(\.totalRetransmits)
        timeouts = delta(\.totalTimeouts)
    }

    static func between(_ points: [ReportPoint]) -> [ReportInterval] {
        guard points.count >= 2 else { return [] }
        return (1..<points.count).map { ReportInterval(from: points[$0 - 1], to: points[$0]) }
    }
}
