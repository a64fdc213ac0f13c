/// The kernel's TCP states (include/net/tcp_states.h), as `tcp_info.state` reports them.
public enum TCPState: UInt8, CaseIterable, Sendable {
    case established = 1
    case synSent
    case synRecv
    case finWait1
    case finWait2
    case timeWait
    case close
    case closeWait
    case lastAck
    case listen
    case closing
    case newSynRecv
    case boundInactive

    /// The kernel's name without `TCP_`: "ESTABLISHED", "CLOSE_WAIT"...
    public var name: String {
        switch self {
        case .established: "ESTABLISHED"
        case .synSent: "SYN_SENT"
        case .synRecv: "SYN_RECV"
        case .finWait1: "FIN_WAIT1"
        case .finWait2: "FIN_WAIT2"
        case .timeWait: "TIME_WAIT"
        case .close: "CLOSE"
        case .closeWait: "CLOSE_WAIT"
        case .lastAck: "LAST_ACK"
        case .listen: "LISTEN"
        case .closing: "CLOSING"
        case .newSynRecv: "NEW_SYN_RECV"
        case .boundInactive: "BOUND_INACTIVE"
        }
    }

    /// Parses a state name: case-insensitive, '-' for '_', optional `TCP_` prefix ("close-wait").
    public static func named(_ text: String) -> TCPState? {
        let key = StateNameKey.normalize(text, dropping: "TCP_")
        return allCases.first { $0.name == key }
    }
}

/// The congestion-avoidance states (`tcp_info.ca_state`, enum tcp_ca_state).
public enum TCPCongestionState: UInt8, CaseIterable, Sendable {
    case open = 0
    case disorder
    case cwr
    case recovery
    case loss

    /// The kernel's name without `TCP_CA_`: "Open", "Disorder", "CWR", "Recovery", "Loss".
    public var name: String {
        switch self {
        case .open: "Open"
        case .disorder: "Disorder"
        case .cwr: "CWR"
        case .recovery: "Recovery"
        case .loss: "Loss"
        }
    }

    /// Parses a congestion state name, case-insensitive, optional `TCP_CA_` prefix.
    public static func named(_ text: String) -> TCPCongestionState? {
        let key = StateNameKey.normalize(text, dropping: "TCP_CA_")
        return allCases.first { $0.name.uppercased() == key }
    }
}

/// Shared normalization of state names typed by people.
enum StateNameKey {
    static func normalize(_ text: String, dropping prefix: String) -> String {
        var key = String(text.uppercased().map { $0 == "-" ? "_" : $0 })
        if key.hasPrefix(prefix) { key.removeFirst(prefix.count) }
        return key
    }
}
