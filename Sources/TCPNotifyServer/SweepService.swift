import ServiceLifecycle
import TCPNotifyRuntime

/// The periodic in-kernel sweep, for stall rules (only while some subscriber's rules need it): its
/// period follows the rules in force, which change as subscribers come and go.
struct SweepService: Service {
    let kernel: KernelOwner
    let events: SessionEventHandler
    /// While no rule needs a sweep, how often to look again.
    static let idleCheckMilliseconds: UInt64 = 1000

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while true {
                let interval = kernel.source.tickMilliseconds
                try await Task.sleep(for: .milliseconds(Int(interval ?? Self.idleCheckMilliseconds)))
                if interval != nil { await kernel.tick(events: events) }
            }
        }
    }
}
