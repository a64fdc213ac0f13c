/// One connection as `tcpnotify top` shows it: a row of the table, already reduced to what the columns
/// need (the detail view reads the rest from `TopModel`).
public struct TopRow: Sendable, Equatable {
    public var cookie: UInt64
    public var local: Endpoint
    public var remote: Endpoint
    /// The cgroup the socket was created in (its path's last component), or its id when unknown.
    public var owner: String
    public var state: TCPState?
    /// The verdict shown (nil before the first), and how long it has held.
    public var verdict: Bottleneck?
    public var verdictHeldNanoseconds: UInt64
    public var srttMicroseconds: UInt64
    public var minRTTMicroseconds: UInt64
    public var rttVarianceMicroseconds: UInt64
    public var congestionWindowSegments: UInt64
    /// The kernel's delivery-rate sample (tcp_info.delivery_rate).
    public var deliveryRateBytesPerSecond: UInt64
    /// Bytes acknowledged plus bytes received per second over the last couple of seconds.
    public var throughputBytesPerSecond: Double
    public var retransmitsTotal: UInt64
    /// Segments retransmitted within `TopFlow.recentRetransmitNanoseconds`.
    public var retransmitsRecent: UInt64
    /// The user rule that fired last (the sampling rule is not shown).
    public var lastRule: String?
    /// Closed: shown for a few seconds after its close record.
    public var isClosed: Bool

    public init(cookie: UInt64, local: Endpoint, remote: Endpoint) {
        self.cookie = cookie
        self.local = local
        self.remote = remote
        owner = ""
        verdictHeldNanoseconds = 0
        srttMicroseconds = 0
        minRTTMicroseconds = 0
        rttVarianceMicroseconds = 0
        congestionWindowSegments = 0
        deliveryRateBytesPerSecond = 0
        throughputBytesPerSecond = 0
        retransmitsTotal = 0
        retransmitsRecent = 0
        isClosed = false
    }

    /// ss's short state names: ESTAB, SYN-SENT, CLOSE-WAIT...
    public var stateText: String {
        guard let state else { return "?" }
        if isClosed { return "CLOSED" }
        return state == .established ? "ESTAB" : String(state.name.map { $0 == "_" ? "-" : $0 })
    }
}

extension Bottleneck {
    /// At most 10 characters, for the table (the detail view spells it out).
    public var shortName: String {
        switch self {
        case .applicationLimited: "app-lim"
        case .receiverWindowLimited: "rwnd-lim"
        case .sendBufferLimited: "sndbuf-lim"
        case .bufferbloat: "bloat"
        case .packetLoss: "loss"
        case .readerLimited: "reader-lim"
        case .peerLimited: "peer-lim"
        case .networkLimited: "network"
        case .idle: "idle"
        case .insufficientData: "-"
        }
    }
}
