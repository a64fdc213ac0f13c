import Foundation
import Glibc
import Logging
import ServiceLifecycle
import TCPNotifyBPF
import TCPNotifyRuntime

/// The attached cgroup was removed (rmdir, the unit stopped): nothing there can be seen any more, so
/// the daemon says so and shuts down as on SIGTERM (subscribers get `end`; exit status 0). Watched by
/// `CgroupPresence` (inotify, with a slow fallback check), as `watch` does.
struct CgroupWatchService: Service {
    let path: String
    /// The directory's inode before attaching.
    let inode: UInt64?
    let logger: Logger

    func run() async throws {
        let (removal, signal) = AsyncStream<Void>.makeStream()
        let presence = CgroupPresence(path: path, inode: inode, onGone: { signal.finish() })
        if presence == nil { signal.finish() } // already gone (or another directory) before the watch began
        defer { presence?.stop() }
        let removed = try? await cancelWhenGracefulShutdown {
            for await _ in removal {}
            return !Task.isCancelled
        }
        guard removed == true else { return }
        logger.error("the attached cgroup was removed; stopping", metadata: ["cgroup": "\(path)"])
        StandardError.write("tcpnotify: \(SessionEvent.cgroupRemoved(path).message)\n")
    }
}
