import TCPNotifyBPF
import TCPNotifyCore

/// What a session tells its user besides the records, in the order it happens. `lines` are the texts
/// `watch` prints on stderr, each after "tcpnotify: " (the tests look for these).
public enum SessionEvent: Sendable {
    /// `--mode auto`: BPF could not be set up; polling instead.
    case pushUnavailable(summary: String, pollInterval: String)
    /// The sock_ops program is attached.
    case attached(cgroup: String, linkID: UInt32, rules: Int)
    /// Polling started.
    case polling(cgroup: String?, interval: String, namespaces: Int, rules: Int, filtersInKernel: Bool)
    /// The sockets established before the start were enrolled.
    case enrolled(ExistingEnrollment)
    /// Existing sockets could not be enrolled (not a refused program: those are degradations).
    case enrollmentFailed(String)
    /// Attached and enrolled: records flow from here on. "ready in N ms since exec (...)".
    case ready(String)
    /// How often the sweep runs, and which rule set it: "every 3m (last_ack_recv > 1h × 5 %)".
    case sweepSchedule(String)
    /// The first sweep under a horizon: when the next one is needed ("sweep: next after 59m58s: ...").
    case sweepHorizon(String)
    /// The sweep cannot run: stall and silence rules are checked at TCP events only.
    case noSweep(String)
    /// A sweep failed (reported once).
    case sweepFailed(String)
    /// A feature this host refused, and what replaced it (each reported once, when found).
    case degradation(Degradation)
    case noRunStatistics(String)
    /// At a clean stop: the callback flags we set, cleared (or why some are kept).
    case callbackFlagsReleased(CallbackFlagRelease)
    case reloaded(path: String, rules: Int)
    case reloadFailed(String)
    case reloadIgnored
    /// The cgroup the session watched was removed: nothing more can be seen; the session stops.
    case cgroupRemoved(String)

    /// The stderr lines (without the "tcpnotify: " prefix).
    public var lines: [String] {
        if case .enrolled(let result) = self { return Self.enrolledLines(result) }
        return [message]
    }

    /// The first line of the stderr text.
    public var message: String {
        switch self {
        case .pushUnavailable(let summary, let interval):
            "BPF unavailable (\(summary)); polling with sock_diag every \(interval) instead"
        case .attached(let cgroup, let linkID, let rules):
            "watching cgroup \(cgroup) (link \(linkID)) with \(rules) rule(s); SIGINT or SIGTERM stops"
        case .polling(let cgroup, let interval, let namespaces, let rules, let filtersInKernel):
            "watching \(cgroup.map { "cgroup \($0)" } ?? "every cgroup") by polling sock_diag every \(interval) in "
                + "\(namespaces) network namespace(s) with \(rules) rule(s)"
                + (filtersInKernel ? "" : " (filter too large for sock_diag bytecode: applied in user space)")
                + "; SIGINT or SIGTERM stops"
        case .enrolled(let result):
            Self.enrolledLines(result)[0]
        case .enrollmentFailed(let reason):
            "existing sockets are not enrolled, only new connections are watched: \(reason)"
        case .ready(let summary):
            summary
        case .sweepSchedule(let schedule):
            "sweep: \(schedule)"
        case .sweepHorizon(let text):
            text
        case .noSweep(let reason):
            "no periodic sweep, stall and silence rules are checked only at TCP events: \(reason)"
        case .sweepFailed(let reason):
            "the periodic sweep failed, stalls are seen only at TCP events: \(reason)"
        case .degradation(let degradation):
            degradation.message
        case .callbackFlagsReleased(let release):
            release.summary
        case .noRunStatistics(let reason):
            "no kernel run-time statistics for the metrics: \(reason)"
        case .reloaded(let path, let rules):
            "reloaded \(path): \(rules) rule(s)"
        case .reloadFailed(let reason):
            "reload failed, keeping the running configuration: \(reason)"
        case .reloadIgnored:
            "SIGHUP ignored: no --config file to reload"
        case .cgroupRemoved(let path):
            "the cgroup \(path) was removed: no socket there can be seen any more; stopping"
        }
    }

    static func enrolledLines(_ result: ExistingEnrollment) -> [String] {
        let milliseconds = Double(result.elapsedNanoseconds) / 1e6
        var lines = ["enrolled \(result.enrolled) existing socket(s) in \(result.namespaces) network namespace(s) in "
            + formatTenths(milliseconds) + " ms (\(result.visited) visited"
            + (result.viaTracepoints > 0 ? ", \(result.viaTracepoints) watched through tracepoints" : "") + ")"]
        for failure in result.failures.prefix(5) { lines.append("could not enroll existing sockets in \(failure)") }
        if result.failures.count > 5 { lines.append("... and \(result.failures.count - 5) more namespace(s)") }
        return lines
    }

    /// "%.1f" without Foundation.
    static func formatTenths(_ value: Double) -> String {
        let tenths = Int((max(value, 0) * 10).rounded())
        return "\(tenths / 10).\(tenths % 10)"
    }
}

/// Where a session's events go (stderr for the commands, a logger for `serve`).
public typealias SessionEventHandler = @Sendable (SessionEvent) -> Void

/// Writes each degradation once, when it is first found.
struct DegradationReport {
    private var reported = 0

    mutating func report(_ degradations: [Degradation], to events: SessionEventHandler) {
        guard degradations.count > reported else { return }
        for degradation in degradations[reported...] { events(.degradation(degradation)) }
        reported = degradations.count
    }
}
