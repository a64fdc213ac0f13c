import CTCPNotify
import Glibc
import TCPNotifyCore

/// Facts about the running kernel read from its BTF, once per process.
public enum KernelInfo {
    /// The `tcp_info` fields this kernel's getsockopt(TCP_INFO) returns: the members of its
    /// `struct tcp_info`. Without BTF, every field (the programs cannot load there anyway).
    public static let tcpInfoFields: TCPInfoFieldSet = {
        guard let members = structMembers("tcp_info") else { return .all }
        return TCPInfoFieldSet(kernelMembers: members)
    }()

    /// The running kernel's release (`uname -r`).
    public static var release: String { Preflight.kernelVersion().text }

    /// Whether the running kernel's version is below `version` ("6.12"): only then is a missing feature
    /// explained by the kernel's age rather than by this host's policy.
    public static func isOlder(than version: String) -> Bool {
        let running = Preflight.kernelVersion()
        let wanted = version.split(separator: ".").compactMap { Int($0) }
        guard wanted.count >= 2 else { return false }
        return (running.major, running.minor) < (wanted[0], wanted[1])
    }

    /// Member names of a struct in the kernel's BTF, or nil when there is no BTF or no such struct.
    static func structMembers(_ name: String) -> [String]? {
        var buffer = [CChar](repeating: 0, count: 16 << 10)
        let count = CTCPNotify_struct_members(name, &buffer, buffer.count)
        guard count > 0 else { return nil }
        return String(cString: buffer).split(separator: "\n").map(String.init)
    }
}
