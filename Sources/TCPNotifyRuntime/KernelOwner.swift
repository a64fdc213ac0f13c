import Dispatch
import TCPNotifyBPF

/// A source whose subscriber tables are touched only on one serial queue (`serve`): joins, leaves,
/// reloads and sweeps run one at a time, and iterators that enter other network namespaces (setns) never
/// run on the concurrency pool. The source pushes (BPF) or polls (sock_diag).
public final class KernelOwner: @unchecked Sendable {
    public let source: any SubscriberTablesSource
    private let queue = DispatchQueue(label: "tcpnotify-kernel")

    public init(_ source: any SubscriberTablesSource) { self.source = source }

    public func run<T: Sendable>(_ body: @escaping @Sendable (any SubscriberTables) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                do {
                    continuation.resume(returning: try self.source.withTables(body))
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    public func runSync<T>(_ body: (any SubscriberTables) throws -> T) rethrows -> T {
        try queue.sync { try source.withTables(body) }
    }

    /// The periodic sweep (when the rules need one), on the queue.
    public func tick(events: @escaping SessionEventHandler) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            queue.async {
                self.source.tick(events: events)
                continuation.resume()
            }
        }
    }
}
