import Foundation
import Glibc
import Synchronization

/// Notices that the cgroup a session is attached to was removed (rmdir, a systemd unit that stopped):
/// the kernel then runs the program for nobody, so the session stops and says why instead of watching
/// nothing. A directory made again under the same name is another cgroup (another inode): also gone.
public final class CgroupPresence: Sendable {
    public let path: String
    private let inode: UInt64
    private let gone = Atomic<Bool>(false)
    private let stopped = Atomic<Bool>(false)

    /// Checks every `intervalMilliseconds` on a thread of its own; `onGone` runs once, on that thread.
    public init?(path: String, intervalMilliseconds: UInt32 = 250, onGone: @escaping @Sendable () -> Void) {
        guard let inode = Self.inode(of: path) else { return nil }
        self.path = path
        self.inode = inode
        let thread = Thread { [self] in
            while !stopped.load(ordering: .relaxed) {
                usleep(intervalMilliseconds * 1000)
                if Self.inode(of: path) != inode {
                    gone.store(true, ordering: .releasing)
                    onGone()
                    return
                }
            }
        }
        thread.name = "tcpnotify-cgroup-presence"
        thread.start()
    }

    public var isGone: Bool { gone.load(ordering: .acquiring) }

    public func stop() { stopped.store(true, ordering: .relaxed) }

    public static func inode(of path: String) -> UInt64? {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        return UInt64(status.st_ino)
    }
}
