import TCPNotifyCore

/// A notification line, decoded: the socket, the event, the rules that notified and its tcp_info.
public struct TCPNotification: Sendable, Equatable {
    /// The line as decoded (every field, including the cgroup attribution and a verdict when present).
    public var wire: Wire.Notification
    /// Wall-clock seconds, and the kernel's CLOCK_MONOTONIC at the event.
    public var timestamp: Double { wire.ts.seconds }
    public var monotonicNanoseconds: UInt64 { wire.tsMonoNs }
    /// rtt, retrans, rto, state, close, sweep, ...
    public var trigger: String { wire.trigger.description }
    /// This subscriber's names of the rules that notify now (empty for a close record).
    public var rules: [String] { wire.rules }
    /// Local and remote ends (`addr:port`, `[v6]:port`).
    public var src: String { wire.src }
    public var dst: String { wire.dst }
    public var family: String { wire.family }
    public var cookie: UInt64 { wire.cookie }
    public var cgroupID: UInt64 { wire.cgroupID }
    /// State and close triggers: the state left.
    public var oldState: String? { wire.oldState }
    public var socketNotifications: UInt64 { wire.socketNotifications }
    /// tcp_info's numeric fields by kernel name (`rtt` in µs, `total_retrans`, ...).
    public var tcpInfo: [String: UInt64] { wire.tcpInfo.numbers }
    /// `tcp_info.state` and `tcp_info.ca_state` as names (ESTABLISHED, Open, ...).
    public var state: String { wire.tcpInfo.name("state") ?? "" }
    public var caState: String { wire.tcpInfo.name("ca_state") ?? "" }

    public init(_ wire: Wire.Notification) { self.wire = wire }
}
