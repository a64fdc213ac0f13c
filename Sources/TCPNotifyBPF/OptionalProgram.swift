import TCPNotifyCore

/// tcpnotify's programs beyond the core (sock_ops, in `tcpnotify.bpf.c`). Each is a BPF object of its
/// own that shares the core's maps and loads on first use, so a kernel or host policy that refuses one
/// loses only what depends on it, and a run that needs none of them verifies none of them.
public enum OptionalProgram: String, CaseIterable, Sendable {
    /// iter/tcp: enrolls the sockets that existed before the start.
    case enrollExisting = "enroll_existing"
    /// iter/bpf_sk_storage_map: the periodic sweep (stall and silence rules), over enrolled sockets only.
    case sweepMap = "sweep_enrolled"
    /// iter/tcp: the sweep where the map iterator is refused; walks each network namespace.
    case sweepTCP = "sweep_sockets"
    /// iter/bpf_sk_storage_map: clears a departed subscriber's bit from enrolled sockets (`serve`).
    case forgetMap = "forget_subscribers"
    /// iter/tcp: the same where the map iterator is refused.
    case forgetTCP = "forget_sockets"
    /// iter/tcp: `tcpnotify snapshot`.
    case snapshot = "snapshot_sockets"
    /// tp_btf tcp_probe + inet_sock_set_state: rule checks for existing sockets whose callbacks the kernel
    /// would not switch on from an iterator (before 6.12).
    case tracepoints = "probe_existing"

    var embeddedObject: StaticString {
        switch self {
        case .enrollExisting: BPFObject_enroll.base64
        case .sweepMap: BPFObject_sweep_map.base64
        case .sweepTCP: BPFObject_sweep_tcp.base64
        case .forgetMap: BPFObject_forget_map.base64
        case .forgetTCP: BPFObject_forget_tcp.base64
        case .snapshot: BPFObject_snapshot.base64
        case .tracepoints: BPFObject_tracepoints.base64
        }
    }

    /// The program names in its object (what `TCPNOTIFY_REFUSE_PROGRAMS` and error messages use).
    public var programs: [String] {
        self == .tracepoints ? ["probe_existing", "state_existing"] : [rawValue]
    }

    /// Its BPF attach type, for reports.
    public var attachType: String {
        switch self {
        case .enrollExisting, .sweepTCP, .forgetTCP, .snapshot: "iter/tcp"
        case .sweepMap, .forgetMap: "iter/bpf_sk_storage_map"
        case .tracepoints: "tp_btf"
        }
    }

    /// What it gives, in a user's words.
    public var feature: String {
        switch self {
        case .enrollExisting: "enrolling connections that existed before the start"
        case .sweepMap: "sweep over enrolled sockets (sk_storage map iterator)"
        case .sweepTCP: "sweep over each namespace's TCP sockets (iter/tcp)"
        case .forgetMap: "clearing a departed subscriber from enrolled sockets (sk_storage map iterator)"
        case .forgetTCP: "clearing a departed subscriber, per namespace (iter/tcp)"
        case .snapshot: "snapshot of the selected sockets (iter/tcp)"
        case .tracepoints: "rule checks for existing sockets through tracepoints (kernels before 6.12)"
        }
    }

    /// The first Linux version with what it needs (upstream; a host may still refuse it).
    public var minimumKernel: String {
        switch self {
        case .enrollExisting, .sweepTCP, .forgetTCP, .snapshot: "5.15"
        case .sweepMap, .forgetMap: "5.9"
        case .tracepoints: "5.11"
        }
    }

    /// What takes over when this program is refused.
    public var fallback: OptionalProgram? {
        switch self {
        case .sweepMap: .sweepTCP
        case .forgetMap: .forgetTCP
        default: nil
        }
    }

    /// What is lost without it (and without its fallback, when that is refused too).
    public var lostWithout: String {
        switch self {
        case .enrollExisting: "connections established before the start are not watched (new ones are)"
        case .sweepMap: "the sweep visits every TCP socket of each network namespace (about 1 µs each), not only the enrolled ones; namespaces are re-listed every 30 s, and when /run/netns changes"
        case .sweepTCP: "stall and silence rules are checked only at TCP events"
        case .forgetMap: "a subscriber leaving costs a walk over every TCP socket of each network namespace"
        case .forgetTCP: "a departed subscriber's slot is never reused"
        case .snapshot: "`tcpnotify snapshot` needs it (use `ss -ti`)"
        case .tracepoints: "existing connections are checked only by the sweep (new connections are pushed as usual)"
        }
    }

    /// The degradation to report when the kernel refused it with `error`.
    public func degradation(_ error: BPFError) -> Degradation {
        let replacement = fallback.map { "\($0.rawValue) (\($0.attachType)): \($0.feature)" }
        return Degradation(
            feature: feature, program: rawValue, reason: error.summary,
            lost: lostWithout,
            replacement: replacement, minimumKernel: KernelInfo.isOlder(than: minimumKernel) ? minimumKernel : nil)
    }
}
