import Glibc
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import TCPNotifyBPF

/// The subscriber socket's file was removed (its directory deleted, a tmpfs cleaner): nobody new could
/// connect. It is made again at the same path within half a second; connected subscribers stay.
struct SocketKeeperService: Service {
    let socketPath: String
    let rebind: @Sendable () async throws -> Channel
    let logger: Logger

    /// The socket file listened on, and the listeners made again (closed at shutdown).
    private final class Listening: Sendable {
        let inode: Mutex<UInt64?>
        let made = Mutex<[Channel]>([])
        init(_ inode: UInt64?) { self.inode = Mutex(inode) }
    }

    func run() async throws {
        let listening = Listening(Self.inode(socketPath))
        try? await cancelWhenGracefulShutdown {
            while true {
                try await Task.sleep(for: .milliseconds(500))
                guard Self.inode(socketPath) != listening.inode.withLock({ $0 }) else { continue }
                logger.warning("the subscriber socket was removed; listening there again", metadata: ["socket": "\(socketPath)"])
                do {
                    let channel = try await rebind()
                    listening.made.withLock { $0.append(channel) }
                    listening.inode.withLock { $0 = Self.inode(socketPath) }
                    StandardError.write("tcpnotify: \(socketPath) was removed; listening there again\n")
                } catch {
                    logger.error("cannot listen again; retrying", metadata: ["socket": "\(socketPath)", "error": "\(error)"])
                }
            }
        }
        for channel in listening.made.withLock({ $0 }) { try? await channel.close() }
    }

    static func inode(_ path: String) -> UInt64? {
        var status = stat()
        guard lstat(path, &status) == 0 else { return nil }
        return UInt64(status.st_ino)
    }
}
