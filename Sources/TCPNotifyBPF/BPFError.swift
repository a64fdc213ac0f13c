import Glibc

/// Everything that can go wrong between tcpnotify and the kernel, each with what to do about it.
public enum BPFError: Error, Sendable, CustomStringConvertible {
    /// The kernel lacks a feature tcpnotify needs.
    case notSupported(feature: String, minimumKernel: String, detail: String)
    /// Not root, or missing a capability.
    case permissionDenied(what: String, needs: String)
    /// The verifier refused a program; `log` is libbpf's account of it.
    case verifierRejected(program: String, errno: Int32, log: String)
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
