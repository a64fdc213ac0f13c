/// The TCP event at which the kernel program checked the rules and sent a record.
public enum Trigger: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case rtt = 1
    case retrans = 2
    case rto = 3
    case state = 4
    case close = 5
    /// The periodic sweep over enrolled sockets, for conditions no TCP event reports (stalls).
    case sweep = 6
    /// `tcpnotify snapshot`: the socket's state now, no rule involved.
    case snapshot = 7
    /// `--mode poll`: found by a sock_diag poll in user space.
    case poll = 8
    /// An incoming segment (the tcp_probe tracepoint): existing sockets whose sock_ops callbacks the
    /// kernel would not switch on (before Linux 6.12) are checked here instead.
    case segment = 9

    public var description: String {
        switch self {
        case .rtt: "rtt"
        case .retrans: "retrans"
        case .rto: "rto"
        case .state: "state"
        case .close: "close"
        case .sweep: "sweep"
        case .snapshot: "snapshot"
        case .poll: "poll"
        case .segment: "segment"
        }
    }
}

/// One notification from the kernel: which socket, which event, which rules, and its tcp_info then.
public struct SocketNotification: Sendable, Equatable {
    public var trigger: Trigger
    /// AF_INET (2) or AF_INET6 (10), as the socket was created.
    public var family: UInt8
    public var local: Endpoint
    public var remote: Endpoint
    public var cookie: UInt64
    public var cgroupID: UInt64
    /// Kernel CLOCK_MONOTONIC at the event.
    public var monotonicNanoseconds: UInt64
    /// Bit i set: rule i became true at this event.
    public var rulesFired: UInt32
    /// Bit i set: rule i holds at this event.
    public var rulesTrue: UInt32
    public var ruleGeneration: UInt32
    /// The socket's sock_ops callback flags at the event (tcpnotify's bits OR'ed with other programs').
    public var callbackFlags: UInt32
    /// For state changes and close: the state being left. `info.state` is the state entered.
    public var oldState: UInt8
    /// Notifications this socket has produced, this one included.
    public var socketNotificationCount: UInt64
    public var info: TCPInfo
    /// The subscribers that selected the socket (bit i = subscriber slot i; `watch` is subscriber 0).
    public var subscribers: UInt32 = 1

    public init(
        trigger: Trigger, family: UInt8, local: Endpoint, remote: Endpoint, cookie: UInt64, cgroupID: UInt64,
        monotonicNanoseconds: UInt64, rulesFired: UInt32, rulesTrue: UInt32, ruleGeneration: UInt32,
        callbackFlags: UInt32 = 0, oldState: UInt8, socketNotificationCount: UInt64, info: TCPInfo
    ) {
        self.trigger = trigger
        self.family = family
        self.local = local
        self.remote = remote
        self.cookie = cookie
        self.cgroupID = cgroupID
        self.monotonicNanoseconds = monotonicNanoseconds
        self.rulesFired = rulesFired
        self.rulesTrue = rulesTrue
        self.ruleGeneration = ruleGeneration
        self.callbackFlags = callbackFlags
        self.oldState = oldState
        self.socketNotificationCount = socketNotificationCount
        self.info = info
    }

    /// Indices of the rules that fired, lowest first.
    public var firedRuleIndices: [Int] {
        (0..<32).filter { rulesFired & (1 << UInt32($0)) != 0 }
    }
}

/// What the kernel and the reader counted; printed as the final `stats` line.
public struct WatchStatistics: Sendable, Equatable {
    /// Rule checks on enrolled sockets (sock_ops callbacks that reached the rules).
    public var events: UInt64 = 0
    public var established: UInt64 = 0
    public var enrolled: UInt64 = 0
    public var notifications: UInt64 = 0
    /// Records the kernel could not write because the ring buffer was full.
    public var ringDrops: UInt64 = 0
    /// Matching sockets that could not be enrolled (no sk_storage, or callback flags refused).
    public var enrollFailures: UInt64 = 0
    /// Records read from the ring buffer by user space.
    public var received: UInt64 = 0
    /// Records received but not delivered (malformed size, or a full delivery queue).
    public var userDrops: UInt64 = 0
    public var wakeups: UInt64 = 0
    /// Sockets established before the start that the enrollment iterator visited and enrolled.
    public var existingVisited: UInt64 = 0
    public var existingEnrolled: UInt64 = 0
    /// Periodic sweeps run, and the rule checks they made (one per enrolled socket per sweep).
    public var sweeps: UInt64 = 0
    public var sweepChecks: UInt64 = 0
    /// Sweep ticks skipped because no enrolled socket could reach a time rule yet (`SweepHorizon`).
    public var sweepsSkipped: UInt64 = 0
    /// Enrolled sockets that have closed since the start; `enrolled - closed` are watched now.
    public var closed: UInt64 = 0
    /// Existing sockets enrolled without sock_ops callbacks (kernel < 6.12): the tracepoints watch them.
    public var viaTracepoints: UInt64 = 0
    /// RTT callbacks without the new srtt argument (kernels before 6.10): rules saw the previous srtt.
    public var rttWithoutSRTT: UInt64 = 0
    /// Features this host refused and what replaced them.
    public var degradations: [Degradation] = []

    /// Sockets being watched now (enrolled and not yet closed).
    public var watchedSockets: UInt64 { enrolled >= closed ? enrolled - closed : 0 }

    public init() {}
}
