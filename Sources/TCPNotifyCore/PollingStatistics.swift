/// What `watch --mode poll` counts beside `WatchStatistics`, above all what polling could not see.
public struct PollingStatistics: Sendable, Equatable {
    /// Completed polls (one sock_diag dump per family per network namespace each).
    public var polls: UInt64 = 0
    /// Network namespaces dumped in the last poll.
    public var namespaces: UInt64 = 0
    /// Namespaces that could not be entered or opened (e.g. no CAP_SYS_ADMIN): their sockets are not seen.
    public var namespaceErrors: UInt64 = 0
    /// Dumps that failed (netlink errors, timeouts, malformed replies): those sockets went unseen that poll.
    public var dumpErrors: UInt64 = 0
    /// Dumps the kernel flagged as interrupted (NLM_F_DUMP_INTR): a socket may be missing or doubled.
    public var dumpsInterrupted: UInt64 = 0
    /// Polls that took longer than the interval (the next one started late).
    public var latePolls: UInt64 = 0
    /// Sockets dropped because the kernel sent no cgroup id while --cgroup restricts the selection.
    public var cgroupUnknown: UInt64 = 0

    public init() {}
}
