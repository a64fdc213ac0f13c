import TCPNotifyCore

/// Where a session's records come from: the kernel's push (`PushSource`) or sock_diag polling
/// (`PollSource`). A session loads one (its initialiser), starts it, ticks it, reloads it, reads its
/// statistics and stops it; everything else about the lifecycle is the session's.
public protocol NotificationSource: AnyObject, Sendable {
    var kind: SourceKind { get }
    /// The rule-table generation records of the current rules carry.
    var ruleGeneration: UInt32 { get }
    /// Starts delivering records (on a thread of the source's own) and does the start-up work (attach,
    /// enroll the existing sockets, prepare the sweep), reporting it through `events`.
    func start(settings: SessionSettings, deliver: @escaping @Sendable ([SocketNotification]) -> Void,
               events: @escaping SessionEventHandler) throws
    /// How often `tick` has work to do (the sweep), in milliseconds; nil: never.
    var tickMilliseconds: UInt64? { get }
    /// The periodic work, on the session's thread.
    func tick(events: SessionEventHandler)
    /// Sweeps now, and waits (briefly) until the records the kernel wrote meanwhile have been delivered.
    func sweepAndSettle(events: SessionEventHandler)
    /// New rules (re-arming every socket) and selection (for sockets from now on), keeping the sockets
    /// watched and the counts. `names` learns the new generation before any record of it is delivered.
    func replace(_ inputs: SessionInputs, names: RuleNameBook) throws
    /// Current totals; callable from any thread (metrics scrapes).
    func statistics() -> SourceStatistics
    /// Stops: no new records, those already written are delivered; returns the final totals.
    func stop() -> SourceStatistics
}

public enum SourceKind: String, Sendable {
    case push
    case poll
}

/// A source's totals: the kernel's (or the poller's) counters and, when polling, the poll counters.
public struct SourceStatistics: Sendable {
    public var statistics: WatchStatistics
    public var polling: PollingStatistics?
    /// Sockets watched now: enrolled and not closed (push), tracked (poll).
    public var watchedSockets: UInt64
    /// The sock_ops program's kernel run time and runs, when measured.
    public var runTimeNanoseconds: UInt64?
    public var runCount: UInt64?

    public init(statistics: WatchStatistics, polling: PollingStatistics? = nil, watchedSockets: UInt64) {
        self.statistics = statistics
        self.polling = polling
        self.watchedSockets = watchedSockets
    }
}

/// The BPF path could not be set up (privileges, kernel features, loading, attaching); nothing is
/// attached. `--mode auto` polls instead; `--mode bpf` reports `reason`.
public struct BPFUnavailable: Error, CustomStringConvertible {
    public let reason: any Error
    public init(reason: any Error) { self.reason = reason }
    public var description: String { "\(reason)" }

    /// The first line of the reason (a verifier refusal carries libbpf's whole log).
    public var summary: String { String(description.split(separator: "\n", omittingEmptySubsequences: true).first ?? "") }
}
