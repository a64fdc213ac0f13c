import CTCPNotify
import Glibc

/// Kernel-wide BPF run-time accounting (`BPF_ENABLE_STATS`): on while the returned fd is open.
public final class BPFRunStatistics {
    private let fd: Int32

    public init() throws(BPFError) {
        let result = CTCPNotify_enable_stats()
        if result < 0 { throw BPFError.classify(-result, "bpf(BPF_ENABLE_STATS)") }
        fd = result
    }

    deinit { close(fd) }
}
