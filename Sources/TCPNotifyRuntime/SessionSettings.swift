import TCPNotifyBPF
import TCPNotifyCore

/// What a session selects and checks: the compiled filter, rules and tuples (from the command line or a
/// config file).
public struct SessionInputs: Sendable {
    public var filter: CompiledFilter
    public var rules: CompiledRules
    public var tuples: [TupleEntry]

    public init(filter: CompiledFilter, rules: CompiledRules, tuples: [TupleEntry] = []) {
        self.filter = filter
        self.rules = rules
        self.tuples = tuples
    }

    /// Every socket, no rule: what `serve` starts from without a config file (its subscribers' selections
    /// and rules come later).
    public static var everySocketNoRules: SessionInputs {
        SessionInputs(
            filter: CompiledFilter(matchAll: true, predicates: [], clauses: [], source: ""),
            rules: CompiledRules(rules: [], terms: [], clauses: []))
    }
}

/// How a session learns about sockets (`watch --mode`).
public enum SessionMode: String, CaseIterable, Sendable {
    /// BPF when it can be loaded and attached, else polling (with one event saying why).
    case auto
    /// The sock_ops program only; failures are errors.
    case bpf
    /// sock_diag dumps every poll interval, rules evaluated in user space.
    case poll
}

/// Re-reads the inputs on SIGHUP (a config file). A failure keeps the running configuration.
public struct SessionReload: Sendable {
    /// What is reloaded, for messages (the config file's path).
    public var path: String
    public var load: @Sendable () throws(SessionReloadFailure) -> SessionInputs

    public init(path: String, load: @escaping @Sendable () throws(SessionReloadFailure) -> SessionInputs) {
        self.path = path
        self.load = load
    }
}

public struct SessionReloadFailure: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Everything a `Session` needs besides its consumer.
public struct SessionSettings: Sendable {
    public var inputs: SessionInputs
    public var mode: SessionMode = .bpf
    /// Set when only push can serve the command: `--mode auto` then reports the BPF failure with this
    /// reason instead of polling (`--diagnose`: its verdicts come from in-kernel sampling).
    public var pushOnlyReason: String?
    /// The cgroup v2 directory to attach to (push), or to limit polling to; nil = the hierarchy's root.
    public var cgroupPath: String?
    public var ringBufferBytes = 4 << 20
    /// A final record at close for every socket that notified.
    public var notifyOnClose = true
    /// Enroll the selected sockets established before the start (all network namespaces).
    public var enrollExisting = true
    /// Period of the in-kernel sweep over enrolled sockets; 0 = never. It runs only when the rules need
    /// it (`CompiledRules.needsSweep`). Ignored when `sweepPrecision` is set.
    public var sweepIntervalMilliseconds: UInt64 = 1000
    /// Derive the sweep's period from the rules at this precision (`SweepSchedule`), instead of
    /// `sweepIntervalMilliseconds`.
    public var sweepPrecision: Double?
    /// Sweep once as soon as the existing sockets are enrolled: with a sampling rule, every enrolled
    /// socket then has its first record (a baseline) at the start instead of at its first TCP event.
    public var sweepAtStart = false
    /// How often the consumer's `tick` runs (at least as often as the sweep); nil: with the sweep only.
    public var tickMilliseconds: UInt64?
    public var pollIntervalNanoseconds: UInt64 = 1_000_000_000
    /// `--interval` as the user wrote it, for messages.
    public var pollIntervalText = "1s"
    /// Stop after this many seconds (nil: until SIGINT or SIGTERM).
    public var durationSeconds: Double?
    /// SIGHUP reloads these; nil: SIGHUP is reported as ignored.
    public var reload: SessionReload?
    /// Whether SIGHUP is taken at all (`diagnose` leaves it alone).
    public var handlesSIGHUP = true
    /// Kernel run-time statistics of the sock_ops program while the session runs (metrics).
    public var measuresRunTime = false
    /// libbpf's messages on stderr.
    public var verbose = false
    /// `serve`: subscribers join and leave the source's tables (`SubscriberTablesSource`). The inputs are
    /// subscriber 0's (the config file's) when `subscribesSlotZero`; else nothing is selected until one
    /// joins. At the start only subscriber 0's sockets are enrolled, and the sweep is left to the caller
    /// (it prepares it once its own subscriptions are in).
    public var servesSubscribers = false
    public var subscribesSlotZero = false

    public init(inputs: SessionInputs) {
        self.inputs = inputs
    }

    public var sweepPolicy: SweepPolicy {
        get { sweepPrecision.map { .derived(precision: $0) } ?? .forced(milliseconds: sweepIntervalMilliseconds) }
        set {
            switch newValue {
            case .forced(let milliseconds):
                sweepPrecision = nil
                sweepIntervalMilliseconds = milliseconds
            case .derived(let precision):
                sweepPrecision = precision
            }
        }
    }

    /// The kernel-side configuration of the push source.
    var watchConfiguration: WatchConfiguration {
        var configuration = WatchConfiguration(
            filter: inputs.filter, rules: inputs.rules, tuples: inputs.tuples, ringBufferBytes: ringBufferBytes,
            notifyOnClose: notifyOnClose)
        configuration.subscribesSlotZero = !servesSubscribers || subscribesSlotZero
        return configuration
    }

    /// What a poller starts from: `serve`'s subscribers' selections replace this one (`PollSubscriptions`).
    var pollSettings: SessionSettings {
        guard servesSubscribers else { return self }
        var settings = self
        settings.inputs = .everySocketNoRules
        return settings
    }
}
