import CLibbpf
import CTCPNotify

/// A sock_ops program attached to a cgroup. `detach()` (or deinit) removes it.
public final class CgroupAttachment {
    private var link: OpaquePointer?
    public let path: String

    init(link: OpaquePointer, path: String) {
        self.link = link
        self.path = path
    }

    /// The kernel's id for this link (as `bpftool link` lists it).
    public var linkID: UInt32 {
        guard let link else { return 0 }
        return CTCPNotify_link_id(bpf_link__fd(link))
    }

    public func detach() {
        if let link { bpf_link__destroy(link) }
        link = nil
    }

    deinit { detach() }
}
