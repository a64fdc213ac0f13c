/// A secondary finding reported next to the verdict (`signals` in the output), in a fixed order.
public enum DiagnosisSignal: String, Sendable, CaseIterable, CustomStringConvertible {
    /// The smoothed RTT stood well above min_rtt, without being the verdict.
    case rttInflation = "rtt-inflation"
    /// Bytes were retransmitted in the window.
    case retransmissions
    /// Retransmission timeouts expired in the window.
    case timeouts
    /// The peer advertised a zero window in at least one sample.
    case zeroWindow = "zero-window"
    /// The receiver's window limited the sender for part of its busy time.
    case receiverWindowPressure = "receiver-window-pressure"
    /// The send buffer limited the sender for part of its busy time.
    case sendBufferPressure = "send-buffer-pressure"
    /// The sender had nothing to send for part of the window.
    case applicationPauses = "application-pauses"

    /// Receiving end: segments arrived out of order (reordering or loss), without being the verdict.
    case outOfOrder = "out-of-order"
    /// Receiving end: the window was held below half its ceiling by unread data for part of the window.
    case readerPressure = "reader-pressure"

    public var description: String { rawValue }
}
