import TCPNotifyBPF

/// What can go wrong while building the test lab, each case saying what to do about it.
public enum LabError: Error, Sendable, CustomStringConvertible {
    /// The `tcpnotify-lab` executable was not found where tests look for it.
    case labBinaryNotFound(searched: [String])
    /// A command could not be started at all.
    case launchFailed(command: [String], reason: String)
    /// A command ran and exited unsuccessfully.
    case commandFailed(command: [String], status: Int32, stderr: String)
    /// A command or condition did not finish in time.
    case timedOut(what: String, seconds: Double)
    /// The machine lacks something the kernel tests need (root, cgroup v2, BTF, a command).
    case prerequisitesMissing([String])
    /// A cgroup file-system operation failed.
    case cgroup(operation: String, path: String, errno: Int32)
    /// Loading, attaching or querying the loss filter failed.
    case bpf(BPFError)
    /// A setting or name given by the caller is unusable.
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .labBinaryNotFound(let searched):
            return "tcpnotify-lab not found (run `swift build` first, or set TCPNOTIFY_LAB_BIN); looked in: "
                + searched.joined(separator: ", ")
        case .launchFailed(let command, let reason):
            return "cannot run `\(Self.shellText(command))`: \(reason)"
        case .commandFailed(let command, let status, let stderr):
            let detail = stderr.trimmingWhitespace()
            return "`\(Self.shellText(command))` exited with status \(status)" + (detail.isEmpty ? "" : ": \(detail)")
        case .timedOut(let what, let seconds):
            return "\(what) did not finish within \(seconds) s"
        case .prerequisitesMissing(let missing):
            return "kernel tests cannot run here: missing " + missing.joined(separator: "; ")
        case .cgroup(let operation, let path, let errno):
            return "cgroup \(operation) \(path) failed: \(ErrnoText.describe(errno))"
        case .bpf(let error):
            return error.description
        case .invalidArgument(let message):
            return message
        }
    }

    /// A command line as a reader would type it (arguments with spaces quoted).
    static func shellText(_ command: [String]) -> String {
        command.map { $0.contains(where: { $0 == " " || $0 == "'" || $0 == "\"" }) || $0.isEmpty ? "'\($0)'" : $0 }
            .joined(separator: " ")
    }
}

extension String {
    func trimmingWhitespace() -> String {
        String(drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }
}
