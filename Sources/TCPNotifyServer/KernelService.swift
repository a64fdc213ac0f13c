import Logging
import ServiceLifecycle
import TCPNotifyCore
import TCPNotifyRuntime

/// Owns the attachment: at shutdown it detaches first (no new records), lets the reader drain the ring
/// into the subscribers' queues, and prints the final statistics.
struct KernelService: Service {
    let kernel: KernelOwner
    let hub: SubscriptionHub
    let output: LineOutput
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        let final = kernel.source.stop()
        var statistics = final.statistics
        statistics.userDrops += hub.unknownGenerationRecords
        let formatter = NotificationFormatter(format: .json, ruleNames: [], realtimeOffsetNanoseconds: 0)
        output.write([formatter.line(for: statistics, polling: final.polling)]) // polling: "mode":"poll"
        logger.info(kernel.source.kind == .push ? "detached" : "stopped polling", metadata: [
            "mode": "\(kernel.source.kind.rawValue)",
            "events": "\(statistics.events)", "enrolled": "\(statistics.enrolled)",
            "notifications": "\(statistics.notifications)", "ring_drops": "\(statistics.ringDrops)",
            "received": "\(statistics.received)", "subscribers": "\(hub.subscriberCount)",
        ])
        if let release = (kernel.source as? PushSource)?.callbackFlagRelease { logger.info("\(release.summary)") }
    }
}
