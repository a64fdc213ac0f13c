import TCPNotifyBPF
import TCPNotifyCore

/// Why polling cannot start.
public enum PollingError: Error, Sendable, CustomStringConvertible {
    /// A setting given by the user is unusable (a cgroup path).
    case invalidArgument(String)
    /// sock_diag does not work in this process's own network namespace.
    case sockDiag(SockDiagError)

    public var description: String {
        switch self {
        case .invalidArgument(let message): message
        case .sockDiag(let error): "\(error)"
        }
    }
}

/// What to poll for: the same selection and rules as the BPF mode.
public struct PollingConfiguration: Sendable {
    public var filter: CompiledFilter
    public var rules: CompiledRules
    public var tuples: [TupleEntry]
    /// A final record when a socket that notified disappears.
    public var notifyOnClose: Bool
    /// Keep only sockets created in this cgroup v2 directory or below; nil: every socket.
    public var cgroupPath: String?
    /// Network namespaces are enumerated again every this many polls (new ones join, gone ones leave).
    public var namespaceRefreshPolls: UInt64

    public init(filter: CompiledFilter, rules: CompiledRules, tuples: [TupleEntry] = [], notifyOnClose: Bool = true,
                cgroupPath: String? = nil, namespaceRefreshPolls: UInt64 = 10) {
        self.filter = filter
        self.rules = rules
        self.tuples = tuples
        self.notifyOnClose = notifyOnClose
        self.cgroupPath = cgroupPath
        self.namespaceRefreshPolls = max(1, namespaceRefreshPolls)
    }
}

/// One `serve` subscriber's selection, for polling.
public struct SubscriberSelection: Sendable {
    public var slot: Int
    public var filter: CompiledFilter
    public var usesTuples: Bool

    public init(slot: Int, filter: CompiledFilter, usesTuples: Bool) {
        self.slot = slot
        self.filter = filter
        self.usesTuples = usesTuples
    }
}
