import Glibc

/// Parses lab namespace names: `tnl-<pid>-<n>-<host>`.
enum LabNamespaceName {
    static func ownerPID(_ namespace: String, prefix: String) -> Int32? {
        guard namespace.hasPrefix(prefix) else { return nil }
        let parts = namespace.dropFirst(prefix.count).split(separator: "-")
        guard parts.count == 3, let pid = Int32(parts[0]), pid > 0 else { return nil }
        return pid
    }
}

/// Whether a process still exists (a lab namespace whose owner is gone is stale).
enum ProcessLiveness {
    /// kill(pid, 0) succeeds, or fails with EPERM, exactly when the process exists.
    static func isAlive(_ pid: Int32) -> Bool {
        kill(pid, 0) == 0 || errno == EPERM
    }
}

/// Reads /proc/net/tcp and tcp6 tables.
enum ProcNetTCP {
    static let listenState = "0A"

    /// True if a socket in state LISTEN has local port `port`. Rows look like
    /// `0: 00000000:1451 00000000:0000 0A ...` (addresses and ports in hex).
    static func hasListener(port: UInt16, in tables: String) -> Bool {
        for line in tables.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count > 3, fields[3] == listenState,
                  let portText = fields[1].split(separator: ":").last, UInt16(portText, radix: 16) == port
            else { continue }
            return true
        }
        return false
    }
}
