/// Named derived metrics: shorthand for a ratio or difference the kernel computes from two operands.
public struct DerivedMetric: Sendable, Equatable {
    public var name: String
    /// `.ratio` or `.difference`.
    public var kind: RuleTerm.Kind
    public var operand: RuleOperand
    public var operand2: RuleOperand
    /// Written with % only (`busy_pct < 20%`).
    public var isPercentage: Bool
    public var summary: String

    /// "bytes_retrans / bytes_sent".
    public var formula: String {
        "\(operand.name) \(kind == .ratio ? "/" : kind == .sum ? "+" : "-") \(operand2.name)"
    }

    /// "ratio", "%", "us": how its constant is written.
    public var unitText: String {
        kind == .ratio ? (isPercentage ? "%" : "ratio") : operand.unit.description
    }

    public static let all: [DerivedMetric] = [
        DerivedMetric(name: "retrans_rate", kind: .ratio, operand: .field(.bytesRetrans), operand2: .field(.bytesSent),
                      isPercentage: false, summary: "share of the bytes sent that were retransmissions (1% = 0.01)"),
        DerivedMetric(name: "rwnd_limited_pct", kind: .ratio, operand: .field(.rwndLimited), operand2: .field(.busyTime),
                      isPercentage: true, summary: "share of the busy time limited by the peer's receive window"),
        DerivedMetric(name: "sndbuf_limited_pct", kind: .ratio, operand: .field(.sndbufLimited),
                      operand2: .field(.busyTime), isPercentage: true,
                      summary: "share of the busy time limited by our send buffer"),
        DerivedMetric(name: "busy_pct", kind: .ratio, operand: .field(.busyTime), operand2: .age, isPercentage: true,
                      summary: "share of the socket's lifetime with data in flight"),
        DerivedMetric(name: "rtt_inflation", kind: .ratio, operand: .field(.rtt), operand2: .field(.minRtt),
                      isPercentage: false, summary: "smoothed RTT over the minimum RTT: queueing-delay inflation (1 = none)"),
        DerivedMetric(name: "queue_delay", kind: .difference, operand: .field(.rtt), operand2: .field(.minRtt),
                      isPercentage: false, summary: "smoothed RTT minus the minimum RTT: delay added by queues, microseconds"),
    ]

    public static func named(_ name: String) -> DerivedMetric? { all.first { $0.name == name } }

    /// The metric a term computes, whatever it was called when written.
    static func matching(_ term: RuleTerm) -> DerivedMetric? {
        guard term.kind.isBinary else { return nil }
        return all.first { $0.kind == term.kind && $0.operand == term.operand && $0.operand2 == term.operand2 }
    }
}
