/// One `tcp_info` snapshot of a flow and the kernel's CLOCK_MONOTONIC when it was taken: a record's
/// `monotonicNanoseconds` and `info`, or a `getsockopt(TCP_INFO)` poll.
public struct DiagnosisSample: Sendable, Equatable {
    public var monotonicNanoseconds: UInt64
    public var info: TCPInfo

    public init(monotonicNanoseconds: UInt64, info: TCPInfo) {
        self.monotonicNanoseconds = monotonicNanoseconds
        self.info = info
    }

    public init(_ notification: SocketNotification) {
        self.init(monotonicNanoseconds: notification.monotonicNanoseconds, info: notification.info)
    }

    /// A snapshot from `tcp_info` JSON as `NotificationFormatter.writeTCPInfo` writes it, already decoded
    /// into names and values: numbers as they are, `state` and `ca_state` as names. Unknown names are
    /// ignored (a newer kernel's extra fields); returns nil if a state name is not one Linux uses.
    public init?(monotonicNanoseconds: UInt64, numbers: [String: UInt64], names: [String: String] = [:]) {
        var info = TCPInfo()
        for (name, value) in numbers {
            if let field = TCPInfoField.named(name) { info[field] = value }
        }
        if let stateName = names[TCPInfoField.state.name] {
            guard let state = TCPState.named(stateName) else { return nil }
            info[.state] = UInt64(state.rawValue)
        }
        if let congestionName = names[TCPInfoField.caState.name] {
            guard let congestion = TCPCongestionState.named(congestionName) else { return nil }
            info[.caState] = UInt64(congestion.rawValue)
        }
        self.init(monotonicNanoseconds: monotonicNanoseconds, info: info)
    }
}
