/// Who a socket belongs to: its cgroup v2 path (relative to the cgroup2 mount, as in the `0::` line of
/// /proc/PID/cgroup) and, when the path follows a container runtime's naming, the container id and the
/// Kubernetes pod uid. Pure string work; resolving a cgroup id to a path (file I/O) is
/// `TCPNotifyExport.CgroupPaths`.
public struct CgroupAttribution: Sendable, Equatable {
    /// `/` for the root, else `/a/b/c`.
    public var path: String
    public var container: String?
    public var pod: String?

    public init(path: String, container: String? = nil, pod: String? = nil) {
        self.path = path
        self.container = container
        self.pod = pod
    }

    /// The path with the container and pod parsed from it (`ContainerNaming.parse`).
    public init(path: String) {
        let parsed = ContainerNaming.parse(cgroupPath: path)
        self.init(path: path, container: parsed.container, pod: parsed.pod)
    }
}

/// Best-effort container and pod ids from a cgroup path. Heuristic: it knows the names systemd and the
/// common runtimes give their cgroups, and says nothing (nil) about anything else, rather than guess.
///
/// - container: the last path component shaped `docker-<id>.scope`, `cri-containerd-<id>.scope`,
///   `crio-<id>.scope`, `libpod-<id>.scope` (podman), or a bare 64-hex-digit directory (cgroupfs driver:
///   `/docker/<id>`, `/kubepods/burstable/pod<uid>/<id>`). `<id>` must be 12 to 64 hex digits.
/// - pod: a component `pod<uid>` or `kubepods-<qos>-pod<uid>.slice` (systemd driver, where the uid's dashes
///   are written as underscores; they are given back as dashes) below a `kubepods` component.
public enum ContainerNaming {
    private static let scopePrefixes = ["docker-", "cri-containerd-", "crio-", "libpod-", "containerd-"]

    public static func parse(cgroupPath: String) -> (container: String?, pod: String?) {
        let components = cgroupPath.split(separator: "/").map(String.init)
        var pod: String?
        var container: String?
        var underKubepods = false
        for component in components {
            if component.hasPrefix("kubepods") { underKubepods = true }
            if underKubepods, let uid = podUID(component) { pod = uid }
        }
        // The innermost component that names a container wins (nested runtimes, `.../<id>/init.scope`-less).
        for component in components.reversed() {
            if let id = containerID(component) {
                container = id
                break
            }
        }
        return (container, pod)
    }

    static func containerID(_ component: String) -> String? {
        var name = Substring(component)
        if name.hasSuffix(".scope") {
            name = name.dropLast(".scope".count)
            guard let prefix = scopePrefixes.first(where: { name.hasPrefix($0) }) else { return nil }
            name = name.dropFirst(prefix.count)
            return isHex(name, lengths: 12...64) ? String(name) : nil
        }
        // cgroupfs driver: the directory is the full 64-digit id.
        return isHex(name, lengths: 64...64) ? String(name) : nil
    }

    static func podUID(_ component: String) -> String? {
        var name = Substring(component)
        if name.hasSuffix(".slice") {
            name = name.dropLast(".slice".count)
            // kubepods-burstable-pod<uid with _>.slice: the uid is what follows the last "-pod".
            let parts = name.split(separator: "-", omittingEmptySubsequences: false)
            guard let last = parts.last, last.hasPrefix("pod"), parts.count > 1 else { return nil }
            let uid = String(last.dropFirst(3).map { $0 == "_" ? "-" : $0 })
            return isUID(uid) ? uid : nil
        }
        guard name.hasPrefix("pod") else { return nil }
        let uid = String(name.dropFirst(3))
        return isUID(uid) ? uid : nil
    }

    /// A Kubernetes pod uid: 36 characters, hex digits and dashes (8-4-4-4-12).
    static func isUID(_ text: String) -> Bool {
        let groups = text.split(separator: "-", omittingEmptySubsequences: false)
        return groups.map(\.count) == [8, 4, 4, 4, 12] && groups.allSatisfy { isHex($0, lengths: 4...12) }
    }

    static func isHex(_ text: Substring, lengths: ClosedRange<Int>) -> Bool {
        lengths.contains(text.utf8.count) && text.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "f"))
        }
    }
}
