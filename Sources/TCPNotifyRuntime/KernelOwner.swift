import Dispatch
import TCPNotifyBPF

/// A push source whose program is touched only on one serial queue (`serve`): joins, leaves, reloads
/// and sweeps run one at a time, and iterators that enter other network namespaces (setns) never run on
/// the concurrency pool.
public final class KernelOwner: @unchecked Sendable {
    public let source: PushSource
    private let queue = DispatchQueue(label: "tcpnotify-kernel")

    public init(_ source: PushSource) { self.source = source }

    public func run<T: Sendable>(_ body: @escaping @Sendable (TCPNotifyProgram) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async {
                do {
                    continuation.resume(returning: try self.source.withProgram(body))
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    public func runSync<T>(_ body: (TCPNotifyProgram) throws -> T) rethrows -> T {
        try queue.sync { try source.withProgram(body) }
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
