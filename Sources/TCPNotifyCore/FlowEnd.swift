/// Which end of a flow a socket is: the one that mostly sends data, or the one that mostly receives it.
/// Each end sees different things (docs/diagnosis.md, "What each end can know"), so each has its classifier.
public enum FlowEnd: String, Sendable, CaseIterable, Codable, CustomStringConvertible {
    case sender
    case receiver

    public var description: String { rawValue }

    /// The end `samples` (oldest first; the first is the window's baseline) show: the receiver when more bytes
    /// arrived (`bytes_received`) than were acknowledged to it (`bytes_acked`) over the window; with no data
    /// either way in the window, the same comparison over the connection's life. A socket that moved nothing
    /// at all is a sender (the sender's classifier says idle).
    public static func of(_ samples: ArraySlice<DiagnosisSample>) -> FlowEnd {
        guard let first = samples.first?.info, let last = samples.last?.info else { return .sender }
        func delta(_ field: TCPInfoField) -> UInt64 { last[field] >= first[field] ? last[field] - first[field] : 0 }
        let received = delta(.bytesReceived), acked = delta(.bytesAcked)
        // A FIN or SYN counts one byte either way.
        if received > 1 || acked > 1 { return received > acked ? .receiver : .sender }
        return last[.bytesReceived] > last[.bytesAcked] ? .receiver : .sender
    }
}
