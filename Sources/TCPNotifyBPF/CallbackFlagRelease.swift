import CLibbpf
import CTCPNotify
import Glibc
import TCPNotifyCore

/// What a clean stop did to the callback flags tcpnotify switched on.
public struct CallbackFlagRelease: Sendable, Equatable {
    /// Sockets whose flags we set that now have them cleared (other programs' bits kept).
    public var cleared: UInt64 = 0
    /// Sockets the kernel would not clear from an iterator (before 6.12): they keep our flags until they close.
    public var kept: UInt64 = 0
    /// Why nothing could be tried (the enrollment iterator refused), if so.
    public var failure: String?

    public init() {}

    /// The stop log's line: "cleared the callback flags we set on 12 socket(s)".
    public var summary: String {
        if let failure { return "could not clear the callback flags we set (\(failure)): the sockets keep them until they close" }
        var text = "cleared the callback flags we set on \(cleared) socket(s)"
        if kept > 0 {
            text += "; \(kept) socket(s) keep them until they close (this kernel does not let an iterator change them: needs Linux 6.12)"
        }
        return text
    }
}

extension TCPNotifyProgram {
    /// Clean stop, after the detach: clears exactly the flags we switched on (`own_cb_flags`), on the
    /// sockets we enrolled, in every network namespace. Other programs' bits stay. A socket with our
    /// flags left on would keep calling every sock_ops program up its cgroup for nothing.
    public func releaseCallbackFlags() -> CallbackFlagRelease {
        var result = CallbackFlagRelease()
        do throws(BPFError) {
            let fd = try object.mapFD("stats")
            func value(_ stat: tcpnotify_stat) -> UInt64 { MapAccess.sumPerCPU(fd: fd, index: stat.rawValue, cpus: cpuCount) }
            let clearedBefore = value(TCPNOTIFY_STAT_FLAGS_RELEASED), keptBefore = value(TCPNOTIFY_STAT_FLAGS_KEPT)
            control.release_cb_flags = 1
            try MapAccess.update(fd: object.mapFD("control"), key: UInt32(0), value: control, name: "control")
            defer {
                control.release_cb_flags = 0
                try? MapAccess.update(fd: object.mapFD("control"), key: UInt32(0), value: control, name: "control")
            }
            let link = try iteratorLink(.enrollExisting)
            defer { bpf_link__destroy(link) }
            for namespace in NetworkNamespaces.all() {
                _ = try? Self.drain(link: link, in: namespace, output: false)
            }
            result.cleared = value(TCPNOTIFY_STAT_FLAGS_RELEASED) - clearedBefore
            result.kept = value(TCPNOTIFY_STAT_FLAGS_KEPT) - keptBefore
        } catch {
            result.failure = error.summary
        }
        return result
    }
}
