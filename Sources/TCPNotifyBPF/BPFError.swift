import Glibc

/// Everything that can go wrong between tcpnotify and the kernel, each with what to do about it.
public enum BPFError: Error, Sendable, CustomStringConvertible {
    /// The kernel lacks a feature tcpnotify needs.
    case notSupported(feature: String, minimumKernel: String, detail: String)
    /// Not root, or missing a capability.
    case permissionDenied(what: String, needs: String)
    /// The verifier refused a program; `log` is the end of the verifier's log (where the reason is).
    case verifierRejected(program: String, errno: Int32, log: String)
    /// The kernel refused a program although this process has the privileges (EPERM or EACCES with no
    /// verifier verdict): a policy on this host (lockdown, an LSM, a container runtime, a BPF token) or
    /// a program type this kernel build does not allow. Not a permission problem of the user's.
    case refused(program: String, errno: Int32, log: String)
    /// Attaching a program failed.
    case attach(program: String, target: String, errno: Int32)
    /// A libbpf or bpf() call failed.
    case libbpf(function: String, errno: Int32)
    /// A path or setting given by the user is unusable.
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .notSupported(let feature, let minimumKernel, let detail):
            return "this kernel does not support \(feature) (needs Linux \(minimumKernel) or later): \(detail)"
        case .permissionDenied(let what, let needs):
            return "permission denied: \(what) needs \(needs); run as root (sudo) or grant it"
        case .verifierRejected(let program, let errno, let log):
            return "the kernel's verifier rejected BPF program '\(program)' (\(BPFError.errnoText(errno)))"
                + (log.isEmpty ? "" : ":\n\(log)")
        case .refused(let program, let errno, let log):
            return "the kernel refused BPF program '\(program)' (\(BPFError.errnoText(errno))"
                + (log.isEmpty ? ", empty verifier log" : ": \(log)")
                + ") although this process has CAP_BPF/CAP_SYS_ADMIN: this host's policy or kernel build does not allow it"
        case .attach(let program, let target, let errno):
            return "cannot attach '\(program)' to \(target): \(BPFError.errnoText(errno))"
        case .libbpf(let function, let errno):
            return "\(function) failed: \(BPFError.errnoText(errno))"
        case .invalidArgument(let message):
            return message
        }
    }

    /// A bad path or setting from the user: an error in every mode, not a reason to poll.
    public var isInvalidArgument: Bool {
        if case .invalidArgument = self { return true }
        return false
    }

    /// One line: what was refused or failed and why, without the verifier log (for tables and stats).
    public var summary: String {
        switch self {
        case .verifierRejected(let program, let errno, let log):
            let reason = log.split(separator: "\n").last(where: { !$0.hasPrefix("processed ") && !$0.isEmpty }).map(String.init)
            return "verifier rejected '\(program)' (\(BPFError.errnoText(errno)))" + (reason.map { ": \($0)" } ?? "")
        case .refused(let program, let errno, let log):
            return "kernel refused '\(program)' (\(BPFError.errnoText(errno)), " + (log.isEmpty ? "empty verifier log)" : "\(log))")
        default:
            return description
        }
    }

    /// The program a load error names, if any.
    public var program: String? {
        switch self {
        case .verifierRejected(let program, _, _), .refused(let program, _, _), .attach(let program, _, _): program
        default: nil
        }
    }

    /// Missing privileges: no other way of loading would do better.
    public var isPermissionProblem: Bool {
        if case .permissionDenied = self { return true }
        return false
    }

    static func errnoText(_ code: Int32) -> String {
        let positive = code < 0 ? -code : code
        return "\(String(cString: strerror(positive))) (errno \(positive))"
    }

    /// libbpf ≥ 1.0 returns -errno from int functions and NULL with errno set from pointer functions.
    static func check(_ result: Int32, _ function: String) throws(BPFError) {
        if result < 0 { throw classify(-result, function) }
    }

    static func classify(_ code: Int32, _ function: String) -> BPFError {
        switch code {
        case EPERM, EACCES:
            return .permissionDenied(what: function, needs: "CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON (or CAP_SYS_ADMIN)")
        default:
            return .libbpf(function: function, errno: code)
        }
    }
}
