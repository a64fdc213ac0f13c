/// `--unit NAME`: a systemd unit name, and where its cgroup sits in a cgroup v2 hierarchy. systemd names
/// a unit's cgroup after the unit (`/system.slice/nginx.service`, `/user.slice/.../app.scope`), so the
/// cgroup can be found from the tree alone, without systemd running.
public enum SystemdUnitName {
    /// The unit types that own a cgroup.
    public static let cgroupTypes = ["service", "scope", "slice", "socket", "mount", "swap"]

    public struct Problem: Error, Sendable, Equatable, CustomStringConvertible {
        public let description: String
    }

    /// The unit's full name: `nginx` becomes `nginx.service` (as systemctl reads it); a type without a
    /// cgroup (`.timer`, `.target`, ...) and names no unit can have are refused.
    public static func normalized(_ name: String) throws(Problem) -> String {
        guard !name.isEmpty else { throw Problem(description: "the unit name is empty (give one like nginx.service)") }
        guard name.utf8.count <= 255 else { throw Problem(description: "'\(name.prefix(40))...' is longer than a unit name can be (255 bytes)") }
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:-_.\\@")
        if let bad = name.first(where: { !allowed.contains($0) }) {
            throw Problem(description: "'\(name)' is not a unit name: '\(bad)' is not allowed (give a name like nginx.service, not a path)")
        }
        guard let dot = name.lastIndex(of: "."), dot != name.startIndex else { return name + ".service" }
        let type = String(name[name.index(after: dot)...])
        guard cgroupTypes.contains(type) else {
            if type.isEmpty { throw Problem(description: "'\(name)' ends with a dot (give a name like nginx.service)") }
            let known = ["target", "timer", "path", "device", "automount"]
            if known.contains(type) {
                throw Problem(description: "a .\(type) unit has no cgroup of its own; give the .service, .scope or .slice whose connections you want")
            }
            return name + ".service" // "my.app" is the service my.app.service
        }
        return name
    }

    /// The paths (relative to the hierarchy's root) of the cgroups named `unit`, shallowest first: a
    /// system service is one level below its slice, the same name deeper down is most likely a user's.
    public static func cgroups(named unit: String, among paths: [String]) -> [String] {
        paths.filter { $0.split(separator: "/").last.map(String.init) == unit }
            .sorted { ($0.split(separator: "/").count, $0) < ($1.split(separator: "/").count, $1) }
    }
}

/// Names in /proc/PID/fd: `socket:[12345]` for a socket, whose number is its inode.
public enum ProcessFileLink {
    /// The socket inode a /proc/PID/fd/N link names, or nil for anything but a socket.
    public static func socketInode(_ link: String) -> UInt64? {
        guard link.hasPrefix("socket:["), link.hasSuffix("]") else { return nil }
        return UInt64(link.dropFirst(8).dropLast())
    }
}
