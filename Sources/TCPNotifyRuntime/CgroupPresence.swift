import Foundation
import Glibc
import Synchronization

/// Notices that the cgroup a session is attached to was removed (rmdir, a systemd unit that stopped):
/// the kernel then runs the program for nobody, so the session stops and says why instead of watching
/// nothing. A directory made again under the same name is another cgroup (another inode): also gone.
///
/// An inotify watch on the parent directory wakes the thread at once on rmdir (IN_DELETE); the inode is
/// also checked every `fallbackCheckMilliseconds` in case no event comes. A 250 ms stat loop cost idle
/// tcpnotify more CPU than a 3-minute sweep of 20,000 sockets (~80 µs a wake-up under load).
public final class CgroupPresence: Sendable {
    public let path: String
    private let inode: UInt64
    private let gone = Atomic<Bool>(false)
    private let stopped = Atomic<Bool>(false)
    /// A pipe `stop()` writes to so the thread ends now, not at its next check; the inotify descriptor
    /// (-1 if inotify is unavailable). Closed in deinit: the thread holds `self` until it ends.
    private let stopReader: Int32, stopWriter: Int32, notify: Int32

    /// Watches on a thread of its own; `onGone` runs once, on that thread, unless `stop()` came first.
    /// `inode`: the directory's inode as the caller saw it (default: now). Nil if the path is not there.
    public init?(path: String, inode expectedInode: UInt64? = nil, fallbackCheckMilliseconds: Int32 = 5_000,
                 onGone: @escaping @Sendable () -> Void) {
        guard let inode = expectedInode ?? Self.inode(of: path) else { return nil }
        self.path = path
        self.inode = inode
        var stopPipe: [Int32] = [-1, -1]
        guard pipe(&stopPipe) == 0 else { return nil }
        for descriptor in stopPipe { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
        (stopReader, stopWriter) = (stopPipe[0], stopPipe[1])
        notify = inotify_init1(Int32(IN_CLOEXEC))
        // cgroupfs sends no IN_DELETE_SELF to the removed directory itself, only IN_DELETE to its parent
        // (measured on 6.18); a sibling's removal wakes the thread too, for one stat.
        let parent = (path as NSString).deletingLastPathComponent
        if notify >= 0 { _ = inotify_add_watch(notify, parent, UInt32(IN_DELETE | IN_MOVED_FROM | IN_DELETE_SELF)) }
        let thread = Thread { [self] in
            var descriptors = [pollfd(fd: stopReader, events: Int16(POLLIN), revents: 0),
                               pollfd(fd: notify, events: Int16(POLLIN), revents: 0)]
            var buffer = [UInt8](repeating: 0, count: 4096)
            while !stopped.load(ordering: .acquiring) {
                if Self.inode(of: path) != inode {
                    gone.store(true, ordering: .releasing)
                    onGone()
                    return
                }
                _ = poll(&descriptors, nfds_t(descriptors.count), fallbackCheckMilliseconds)
                if notify >= 0, descriptors[1].revents & Int16(POLLIN) != 0 { _ = read(notify, &buffer, buffer.count) }
            }
        }
        thread.name = "tcpnotify-cgroup-presence"
        thread.start()
    }

    deinit {
        for descriptor in [stopReader, stopWriter, notify] where descriptor >= 0 { close(descriptor) }
    }

    public var isGone: Bool { gone.load(ordering: .acquiring) }

    public func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        var byte: UInt8 = 1
        _ = write(stopWriter, &byte, 1)
    }

    public static func inode(of path: String) -> UInt64? {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        return UInt64(status.st_ino)
    }
}
