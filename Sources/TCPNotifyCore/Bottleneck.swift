/// What limits a TCP flow, judged from one end's `tcp_info` over a recent window (see `BottleneckClassifier`
/// for the sending end, `ReceiverClassifier` for the receiving end). The raw values are the vocabulary of
/// `tcpnotify diagnose` output.
public enum Bottleneck: String, Sendable, CaseIterable, CustomStringConvertible {
    /// The sender often had nothing to send.
    case applicationLimited = "application-limited"
    /// The peer's advertised window stopped the sender.
    case receiverWindowLimited = "receiver-window-limited"
    /// The local send buffer stopped the sender.
    case sendBufferLimited = "send-buffer-limited"
    /// A standing queue on the path inflated the RTT far above its minimum.
    case bufferbloat
    /// The path lost packets beyond what congestion explains, and that limited the rate.
    case packetLoss = "packet-loss"
    /// Receiving end: the local application reads slower than data arrives, so the receive buffer fills and
    /// the advertised window shrinks (to zero when it stops reading).
    case readerLimited = "reader-limited"
    /// Receiving end: data arrives slower than the open window allows; the sending end (its application,
    /// its send buffer, its congestion window or the path) sets the pace.
    case peerLimited = "peer-limited"
    /// None of the above: the flow used the path's capacity.
    case networkLimited = "network-limited"
    /// Nothing was sent in the window.
    case idle
    /// Too few samples, or too short a span, to say anything.
    case insufficientData = "insufficient-data"

    public var description: String { rawValue }
}
