import CLibbpf
import CTCPNotify
import Glibc
import TCPNotifyBPF

/// Another sock_ops program on the same cgroup, as production hosts have: it sets its own callback
/// flag (`flag`) at establishment. Detached when released.
public final class ForeignSockOps {
    /// BPF_SOCK_OPS_PARSE_UNKNOWN_HDR_OPT_CB_FLAG.
    public static let flag: UInt32 = 0x20
    private let object: BPFObject
    private var link: OpaquePointer?

    public init(cgroupPath: String) throws {
        object = try BPFObject(embeddedBase64: BPFObject_foreign_sockops.base64, name: "foreign_sockops")
        try object.load()
        let cgroupFD = open(cgroupPath, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard cgroupFD >= 0 else { throw LabError.invalidArgument("cannot open \(cgroupPath)") }
        defer { close(cgroupFD) }
        guard let link = CTCPNotify_attach_cgroup(try object.program("foreign_sockops"), cgroupFD) else {
            throw LabError.invalidArgument("cannot attach the foreign sock_ops program to \(cgroupPath) (errno \(errno))")
        }
        self.link = link
    }

    deinit {
        if let link { bpf_link__destroy(link) }
    }
}
