import CTCPNotify
import Foundation
import Glibc
import TCPNotifyBPF

/// `--cgroup DIR` for polling: a socket is kept when the cgroup it was created in is DIR or below it.
/// A cgroup v2 id is its directory's inode number, so the scope is the set of inode numbers of DIR's
/// directory tree, re-read when an unknown id shows up (a cgroup created since the last scan).
final class CgroupScope {
    let path: String
    private var ids: Set<UInt64> = []
    private var scannedInPoll: UInt64 = .max

    /// Checks that `path` is a cgroup v2 directory.
    init(path: String) throws(PollingError) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else {
            throw .invalidArgument("cannot open cgroup directory '\(path)': \(String(cString: strerror(errno))); "
                + "give a cgroup v2 directory (see /proc/self/mountinfo for the cgroup2 mount)")
        }
        defer { close(fd) }
        guard CTCPNotify_is_cgroup2(fd) == 1 else { throw .invalidArgument("'\(path)' is not a cgroup v2 directory") }
        self.path = path
        ids = Self.scan(path)
    }

    /// Whether `id` is in the scope; rescans at most once per poll for ids not seen before.
    func contains(_ id: UInt64, poll: UInt64) -> Bool {
        if ids.contains(id) { return true }
        guard scannedInPoll != poll else { return false }
        scannedInPoll = poll
        ids = Self.scan(path)
        return ids.contains(id)
    }

    /// The inode numbers of `root` and every directory below it.
    static func scan(_ root: String) -> Set<UInt64> { Set(CgroupTree.ids(under: root)) }
}
