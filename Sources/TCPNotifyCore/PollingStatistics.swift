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

extension NotificationFormatter {
    /// The final statistics line of a polling run: the usual fields, then the polling ones.
    public func line(for statistics: WatchStatistics, polling: PollingStatistics) -> String {
        let base = line(for: statistics)
        switch format {
        case .json:
            guard base.hasSuffix("}") else { return base }
            var writer = JSONWriter()
            writer.beginObject()
            writer.field("mode", "poll")
            writer.field("polls", polling.polls)
            writer.field("namespaces", polling.namespaces)
            writer.field("namespace_errors", polling.namespaceErrors)
            writer.field("dump_errors", polling.dumpErrors)
            writer.field("dumps_interrupted", polling.dumpsInterrupted)
            writer.field("late_polls", polling.latePolls)
            writer.field("cgroup_unknown", polling.cgroupUnknown)
            writer.endObject()
            // Splice the polling fields into the same object, after the common ones.
            return String(base.dropLast()) + "," + String(writer.text.dropFirst())
        case .text:
            return base + "; poll mode: \(polling.polls) polls, \(polling.namespaces) namespaces, "
                + "\(polling.namespaceErrors) namespace errors, \(polling.dumpErrors) dump errors, "
                + "\(polling.dumpsInterrupted) interrupted dumps, \(polling.latePolls) late polls"
        }
    }
}
