import Glibc
import NIOCore
import ServiceLifecycle

/// The subscriber socket. At shutdown (after the kernel service drained the ring) every subscriber gets
/// what is queued for it and an `end` line; then the socket file is removed.
struct SubscriberServerService: Service {
    let server: Channel
    let hub: SubscriptionHub
    let socketPath: String

    func run() async throws {
        try? await gracefulShutdown()
        try? await server.close()
        await hub.finishAll(reason: "shutdown", timeoutSeconds: 2)
        unlink(socketPath)
    }
}
