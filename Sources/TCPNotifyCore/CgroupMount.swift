/// Where the cgroup v2 hierarchy is mounted, read from /proc/self/mountinfo: hosts differ (pure v2 at
/// /sys/fs/cgroup, hybrid layouts with v2 at /sys/fs/cgroup/unified, containers with their own view).
public enum CgroupMount {
    /// The mount point of the first `cgroup2` file system in a mountinfo text, or nil.
    public static func cgroup2MountPoint(mountinfo: String) -> String? {
        for line in mountinfo.split(separator: "\n") {
            // Fields: id parent major:minor root mount-point options [optional...] - fstype source super-options
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard let separator = fields.firstIndex(of: "-"), separator + 1 < fields.count, fields.count > 4 else {
                continue
            }
            if fields[separator + 1] == "cgroup2" { return unescape(String(fields[4])) }
        }
        return nil
    }

    /// The cgroup v2 path of a process, from the `0::` line of /proc/PID/cgroup.
    public static func cgroup2Path(procCgroup: String) -> String? {
        for line in procCgroup.split(separator: "\n") where line.hasPrefix("0::") {
            return String(line.dropFirst(3))
        }
        return nil
    }

    /// mountinfo escapes space, tab, newline and backslash as \ooo octal.
    static func unescape(_ text: String) -> String {
        guard text.contains("\\") else { return text }
        var bytes: [UInt8] = []
        let utf8 = Array(text.utf8)
        var index = 0
        while index < utf8.count {
            if utf8[index] == UInt8(ascii: "\\"), index + 3 < utf8.count,
               let value = UInt8(String(decoding: utf8[(index + 1)...(index + 3)], as: UTF8.self), radix: 8) {
                bytes.append(value)
                index += 4
            } else {
                bytes.append(utf8[index])
                index += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
