import CTCPNotify
import Synchronization

/// Collects libbpf's warnings for the `tcpnotify-lab` command, which shows them only when it fails: the
/// expected cases (an existing clsact qdisc, nothing to detach) make libbpf print kernel messages too.
public enum LibbpfWarnings {
    private static let lines = Mutex<[String]>([])

    public static func startCollecting() {
        CTCPNotify_set_libbpf_logger { level, message in
            guard level == 0, let message else { return } // 0: LIBBPF_WARN (the verifier's log included)
            let text = String(cString: message)
            LibbpfWarnings.lines.withLock { lines in
                lines.append(text.hasSuffix("\n") ? String(text.dropLast()) : text)
                if lines.count > 200 { lines.removeFirst(lines.count - 200) }
            }
        }
    }

    /// The warnings collected since the last call.
    public static func take() -> [String] {
        lines.withLock { lines in
            defer { lines.removeAll() }
            return lines
        }
    }
}
