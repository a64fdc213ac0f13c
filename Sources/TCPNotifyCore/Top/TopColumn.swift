/// The columns of `tcpnotify top`'s table, in display order. Each has a sort key (its letter), a width (the
/// endpoints and the cgroup stretch), and a priority: a narrow terminal drops the least important first.
public enum TopColumn: String, Sendable, CaseIterable {
    case local = "LOCAL"
    case remote = "REMOTE"
    case owner = "CGROUP"
    case state = "STATE"
    case verdict = "VERDICT"
    case held = "HELD"
    case srtt = "SRTT"
    case minRTT = "MINRTT"
    case rttVariance = "RTTVAR"
    case congestionWindow = "CWND"
    case deliveryRate = "DRATE"
    case throughput = "THRU"
    case retransmits = "RETX"
    case recentRetransmits = "RTX10"
    case rule = "RULE"

    /// The key that sorts by this column.
    public var letter: Character {
        switch self {
        case .local: "l"
        case .remote: "f" // foreign, as netstat calls it
        case .owner: "c"
        case .state: "s"
        case .verdict: "v"
        case .held: "h"
        case .srtt: "r"
        case .minRTT: "m"
        case .rttVariance: "j" // jitter
        case .congestionWindow: "w"
        case .deliveryRate: "d"
        case .throughput: "t"
        case .retransmits: "x"
        case .recentRetransmits: "n" // new
        case .rule: "u"
        }
    }

    public static func forLetter(_ letter: Character) -> TopColumn? { allCases.first { $0.letter == letter } }

    /// Fixed width; for the stretching columns, their minimum.
    public var width: Int {
        switch self {
        case .local, .remote: 15
        case .owner: 10
        case .state: 10
        case .verdict: 10
        case .held: 6
        // Room for the title and the sort marker.
        case .minRTT, .rttVariance: 7
        case .srtt, .deliveryRate, .throughput, .recentRetransmits: 6
        case .congestionWindow, .retransmits: 5
        case .rule: 12
        }
    }

    /// How wide a stretching column may grow (an IPv6 endpoint with its port; a cgroup name).
    var maximumWidth: Int {
        switch self {
        case .local, .remote: 47
        case .owner: 28
        default: width
        }
    }

    /// Lower comes first when the terminal is narrow.
    var priority: Int {
        switch self {
        case .local, .remote: 0
        case .verdict: 1
        case .throughput: 2
        case .srtt: 3
        case .held: 4
        case .retransmits: 5
        case .congestionWindow: 6
        case .minRTT: 7
        case .deliveryRate: 8
        case .rttVariance: 9
        case .recentRetransmits: 10
        case .state: 11
        case .rule: 12
        case .owner: 13
        }
    }

    var isRightAligned: Bool {
        switch self {
        case .local, .remote, .owner, .state, .verdict, .rule: false
        default: true
        }
    }

    /// Numbers sort largest first by default (the busiest, slowest, most retransmitting flow on top); text
    /// sorts alphabetically.
    public var sortsDescendingByDefault: Bool { isRightAligned }

    public func cell(_ row: TopRow) -> String {
        switch self {
        case .local: row.local.description
        case .remote: row.remote.description
        case .owner: row.owner
        case .state: row.stateText
        case .verdict: row.verdict?.shortName ?? "..."
        case .held: row.verdict == nil ? "-" : TopText.held(nanoseconds: row.verdictHeldNanoseconds)
        case .srtt: TopText.microseconds(row.srttMicroseconds)
        case .minRTT: TopText.microseconds(row.minRTTMicroseconds)
        case .rttVariance: TopText.microseconds(row.rttVarianceMicroseconds)
        case .congestionWindow: TopText.count(row.congestionWindowSegments)
        case .deliveryRate: TopText.rate(bytesPerSecond: Double(row.deliveryRateBytesPerSecond))
        case .throughput: TopText.rate(bytesPerSecond: row.throughputBytesPerSecond)
        case .retransmits: TopText.count(row.retransmitsTotal)
        case .recentRetransmits: TopText.count(row.retransmitsRecent)
        case .rule: row.lastRule ?? "-"
        }
    }

    /// Ascending order of two rows by this column (ties: none; the table breaks them by cookie).
    public func ascending(_ a: TopRow, _ b: TopRow) -> Bool {
        switch self {
        case .local: Self.endpointOrder(a.local, b.local)
        case .remote: Self.endpointOrder(a.remote, b.remote)
        case .owner: a.owner < b.owner
        case .state: (a.state?.rawValue ?? 0) < (b.state?.rawValue ?? 0)
        case .verdict: (a.verdict?.rawValue ?? "~") < (b.verdict?.rawValue ?? "~")
        case .held: a.verdictHeldNanoseconds < b.verdictHeldNanoseconds
        case .srtt: a.srttMicroseconds < b.srttMicroseconds
        case .minRTT: a.minRTTMicroseconds < b.minRTTMicroseconds
        case .rttVariance: a.rttVarianceMicroseconds < b.rttVarianceMicroseconds
        case .congestionWindow: a.congestionWindowSegments < b.congestionWindowSegments
        case .deliveryRate: a.deliveryRateBytesPerSecond < b.deliveryRateBytesPerSecond
        case .throughput: a.throughputBytesPerSecond < b.throughputBytesPerSecond
        case .retransmits: a.retransmitsTotal < b.retransmitsTotal
        case .recentRetransmits: a.retransmitsRecent < b.retransmitsRecent
        case .rule: (a.lastRule ?? "~") < (b.lastRule ?? "~")
        }
    }

    func isEqual(_ a: TopRow, _ b: TopRow) -> Bool { !ascending(a, b) && !ascending(b, a) }

    /// Addresses byte by byte (numerically), then ports.
    static func endpointOrder(_ a: Endpoint, _ b: Endpoint) -> Bool {
        if a.address != b.address { return a.address.lexicographicallyPrecedes(b.address) }
        return a.port < b.port
    }
}
