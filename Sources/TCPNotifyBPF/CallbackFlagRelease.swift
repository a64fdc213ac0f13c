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
    /// Other tcpnotify programs still run for the attached cgroup: they enrolled sockets with our bits
    /// already on and rely on them, so nothing was cleared (the last one to stop clears what it set).
    public var otherInstances = 0

    public init() {}

    /// The stop log's line: "cleared the callback flags we set on 12 socket(s)".
    public var summary: String {
        if otherInstances > 0 {
            return "left the callback flags we set as they are: \(otherInstances) other tcpnotify program(s) still run "
                + "for this cgroup and may rely on them"
        }
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
    public func releaseCallbackFlags(attachedCgroup: String? = nil) -> CallbackFlagRelease {
        var result = CallbackFlagRelease()
        // Another instance (attached here or above) found our bits set on the sockets we share and did not
        // set them itself: clearing them would take its callbacks away.
        if let attachedCgroup {
            let others = CTCPNotify_count_effective_sockops(attachedCgroup, "sockops_main")
            if others > 0 {
                result.otherInstances = Int(others)
                return result
            }
        }
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
