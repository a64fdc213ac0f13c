import Foundation
import Glibc
import Logging
import ServiceLifecycle
import TCPNotifyBPF
import TCPNotifyRuntime

/// The attached cgroup was removed (rmdir, the unit stopped): nothing there can be seen any more, so
/// the daemon says so and shuts down as on SIGTERM (subscribers get `end`; exit status 0). The root of
/// the hierarchy is never removed: no watch then.
struct CgroupWatchService: Service {
    let path: String
    /// The directory's inode before attaching.
    let inode: UInt64?
    let logger: Logger

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while CgroupPresence.inode(of: path) == inode {
                try await Task.sleep(for: .milliseconds(250))
            }
            logger.error("the attached cgroup was removed; stopping", metadata: ["cgroup": "\(path)"])
            StandardError.write("tcpnotify: \(SessionEvent.cgroupRemoved(path).message)\n")
        }
    }
}
