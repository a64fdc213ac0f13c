import TCPNotifyBPF

/// Every command's exit status, one table (README "Errors and exit codes"). 69 and 77 are sysexits'
/// EX_UNAVAILABLE and EX_NOPERM, so a script can tell "fix the command line" (2) from "this host or
/// this user cannot" (69, 77) from "it broke while running" (1).
public enum ExitStatus: Int32, Sendable, CaseIterable {
    /// Done.
    case ok = 0
    /// The run failed after it started (a socket, the ring buffer, a service), or an unclassified error.
    case failure = 1
    /// Bad input: an option, a value, a combination, a filter, rule, config or tuples file, a path.
    case usage = 2
    /// `diagnose --once` found an impaired flow.
    case impaired = 3
    /// The kernel lacks a feature, or refuses the program (verifier, host policy); `--mode bpf` then.
    case unavailable = 69
    /// Missing privileges (a capability, root).
    case permission = 77

    /// The status an error leads to.
    public static func of(_ error: any Error) -> ExitStatus {
        switch error {
        case let unavailable as BPFUnavailable:
            let inner = of(unavailable.reason)
            return inner == .failure ? .unavailable : inner
        case let session as SessionError:
            return session.status
        case let bpf as BPFError:
            switch bpf {
            case .permissionDenied: return .permission
            case .notSupported, .verifierRejected, .refused: return .unavailable
            case .invalidArgument: return .usage
            case .attach(_, _, let code) where code == 1 || code == 13 || code == -1 || code == -13: return .permission
            case .attach, .libbpf: return .unavailable
            }
        default:
            return .failure
        }
    }
}
