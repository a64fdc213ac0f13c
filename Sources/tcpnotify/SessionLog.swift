import TCPNotifyBPF
import TCPNotifyRuntime

/// A session's events as `tcpnotify: ...` lines on stderr.
enum SessionLog {
    /// Every event's own text.
    static let standard: SessionEventHandler = { event in write(event.lines) }

    /// With the attach line of `diagnose`.
    static func diagnose(windowSeconds: Double) -> SessionEventHandler {
        { event in
            if case .attached(let cgroup, let linkID, _) = event {
                write(["diagnosing flows in cgroup \(cgroup) (link \(linkID)) over \(windowSeconds) s windows; SIGINT or SIGTERM stops"])
            } else {
                write(event.lines)
            }
        }
    }

    static func write(_ lines: [String]) {
        StandardError.write(lines.map { "tcpnotify: \($0)\n" }.joined())
    }
}
