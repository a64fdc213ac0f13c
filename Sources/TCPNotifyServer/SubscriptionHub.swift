import Dispatch
import Foundation
import Logging
import NIOCore
import Synchronization
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyExport
import TCPNotifyRuntime

/// Subscribers, their rule names by generation, and the fan-out of kernel records to them.
package final class SubscriptionHub: Sendable {
    package let kernel: KernelOwner
    package let logger: Logger
    package let queueBytes: Int
    /// Subscriber 0, the config file's subscription: its lines go to stdout, like `watch`.
    package let output: LineOutput
    package let export: WatchExport
    /// `--history`: takes the records of its own subscription.
    package let history: ConnectionHistoryRecorder?
    private let realtimeOffsetNanoseconds: Int64

    private struct Registry {
        var sinks: [Int: SubscriberSink] = [:]
        var generations: [UInt32: GenerationInfo] = [:]
        var configRuleNames: Bool = false
        var receivedRecords: UInt64 = 0
        var unknownGeneration: UInt64 = 0

        mutating func record(_ generation: UInt32, _ info: GenerationInfo) {
            generations[generation] = info
            while generations.count > 16, let oldest = generations.keys.min() { generations[oldest] = nil }
        }
    }

    private let registry = Mutex(Registry())
    /// Where the daemon is attached: a subscription's cgroup must be there or below.
    package let attachedCgroup = Mutex<String?>(nil)
    /// Sockets subscriber 0 (stdout) was told about: they get the close record.
    private let configCookies = Mutex(Set<UInt64>())

    package init(kernel: KernelOwner, logger: Logger, queueBytes: Int, output: LineOutput, export: WatchExport,
         history: ConnectionHistoryRecorder? = nil, initial: (generation: UInt32, tables: SharedTables)) {
        self.history = history
        self.kernel = kernel
        self.logger = logger
        self.queueBytes = queueBytes
        self.output = output
        self.export = export
        realtimeOffsetNanoseconds = Clocks.realtimeOffsetNanoseconds()
        registry.withLock { $0.record(initial.generation, GenerationInfo(initial.tables)) }
    }

    package var subscriberCount: Int { registry.withLock { $0.sinks.count } }
    package var unknownGenerationRecords: UInt64 { registry.withLock { $0.unknownGeneration } }

    /// Registers what records of the next generation will mean (call before the kernel writes it).
    package func recordNextGeneration(_ generation: UInt32, _ tables: SharedTables) {
        registry.withLock { $0.record(generation, GenerationInfo(tables)) }
    }

    // MARK: Fan-out (the ring reader thread)

    /// Formats each record once per subscriber that wants it, with that subscriber's rule names, and
    /// queues it. Never blocks on a subscriber: a full queue drops and counts.
    package func dispatch(_ batch: [SocketNotification]) {
        let (sinks, generations) = registry.withLock { registry in
            registry.receivedRecords += UInt64(batch.count)
            return (registry.sinks, registry.generations)
        }
        var perSink: [Int: [String]] = [:]
        var stdoutLines: [String] = []
        var unknown: UInt64 = 0
        var historyRecords: [SocketNotification] = []
        let metrics = export.metrics
        let attribution = export.cgroupPaths?.resolver
        for notification in batch {
            guard let info = generations[notification.ruleGeneration] else {
                unknown += 1
                continue
            }
            if let history, history.wants(notification) {
                historyRecords.append(notification)
                // Its samples are not notifications: they stay out of the counters and OTLP.
                if history.isOnlyHistorys(notification) { continue }
            }
            metrics?.record(notification, ruleNames: info.metricNames)
            if export.otlp != nil {
                // One log record per kernel record, named with every subscriber's rules.
                var formatter = NotificationFormatter(
                    format: .json, ruleNames: info.metricNames, realtimeOffsetNanoseconds: realtimeOffsetNanoseconds)
                formatter.cgroupAttribution = attribution
                formatter.kernelFields = KernelInfo.tcpInfoFields
                export.exportLogRecord(notification, formatter: formatter, diagnosis: nil)
            }
            var targets = notification.subscribers
            while targets != 0 {
                let slot = targets.trailingZeroBitCount
                targets &= targets - 1
                guard slot < info.subscriberRules.count else { continue }
                let owned = info.subscriberRules[slot]
                var mine = notification
                mine.rulesFired &= owned
                mine.rulesTrue &= owned
                var formatter = NotificationFormatter(
                    format: .json, ruleNames: info.ruleNames[slot] ?? [], realtimeOffsetNanoseconds: realtimeOffsetNanoseconds)
                formatter.cgroupAttribution = attribution
                formatter.kernelFields = KernelInfo.tcpInfoFields
                if slot == 0 {
                    let wanted = configCookies.withLock { cookies -> Bool in
                        if notification.trigger == .close { return cookies.remove(notification.cookie) != nil || mine.rulesFired != 0 }
                        guard mine.rulesFired != 0 else { return false }
                        cookies.insert(notification.cookie)
                        return true
                    }
                    if wanted { stdoutLines.append(formatter.line(for: mine)) }
                    continue
                }
                guard let sink = sinks[slot], notification.ruleGeneration >= sink.joinedGeneration,
                      sink.wants(notification, fired: mine.rulesFired), !sink.dropIfFull(metrics: metrics) else { continue }
                perSink[slot, default: []].append(formatter.line(for: mine))
                // Hand lines over in small groups: a big batch times many subscribers must not pile up here.
                if perSink[slot, default: []].count >= 32, let lines = perSink.removeValue(forKey: slot) {
                    sink.offer(lines, metrics: metrics)
                }
            }
        }
        for (slot, lines) in perSink { sinks[slot]?.offer(lines, metrics: metrics) }
        if !stdoutLines.isEmpty { output.write(stdoutLines) }
        history?.record(historyRecords)
        if unknown > 0 { registry.withLock { $0.unknownGeneration += unknown } }
    }

    // MARK: Joining and leaving

    package struct Joined: Sendable {
        let sink: SubscriberSink
        let ruleNames: [String]
        let filter: String
        let existingEnrolled: UInt64
    }

    /// Compiles a subscriber's request, merges it into the shared tables and enrolls its existing
    /// connections. Errors are messages for the subscriber.
    package func subscribe(filter: String, rules: [String], scope: SubscriptionScope, channel: Channel) async
        -> Result<Joined, SubscriberProtocol.RequestError> {
        let compiledFilter: CompiledFilter, compiledRules: CompiledRules
        let scopeFilter: SubscriberScopeFilter?
        do {
            scopeFilter = try SubscriberScopeFilter(scope, daemonCgroup: attachedCgroup.withLock { $0 })
        } catch {
            return .failure(.init("\(error)"))
        }
        do {
            compiledFilter = try FilterExpression.compile(filter)
        } catch {
            return .failure(.init("invalid filter: \(error)"))
        }
        do {
            compiledRules = try RuleExpression.compile(rules.isEmpty ? RuleExpression.defaultRules : rules)
            try KernelInfo.tcpInfoFields.check(compiledRules, kernel: KernelInfo.release)
        } catch {
            return .failure(.init("invalid rule: \(error)"))
        }
        let subscription = Subscription(filter: compiledFilter, rules: compiledRules)
        let queueBytes = self.queueBytes
        do {
            return .success(try await kernel.run { program throws(SubscriberProtocol.RequestError) -> Joined in
                guard let slot = program.freeSubscriberSlot(from: 1) else {
                    throw .init("no free subscriber slot: at most \(SubscriptionSet.maxSubscribers - 1) subscribers at once")
                }
                var next = program.subscriptions
                next[slot] = subscription
                let tables: SharedTables
                do {
                    tables = try next.tables()
                } catch {
                    throw .init("\(error)")
                }
                let generation = program.ruleGeneration &+ 1
                let sink = SubscriberSink(
                    slot: slot, joinedGeneration: generation, channel: channel, queueBytes: queueBytes, scope: scopeFilter)
                self.recordNextGeneration(generation, tables)
                self.registry.withLock { $0.sinks[slot] = sink }
                // Its drop counter starts at 0, so the first drops show as an increase (and alert).
                self.export.metrics?.recordSubscriberDrops(subscriber: String(slot), count: 0)
                do {
                    try program.apply(next, forceNewRules: true)
                } catch {
                    self.registry.withLock { $0.sinks[slot] = nil }
                    throw .init("the kernel refused the tables: \(error)")
                }
                var existing: UInt64 = 0
                do {
                    let result = try program.enrollExisting(in: NetworkNamespaces.all(), subscribers: UInt32(1) << UInt32(slot))
                    existing = result.enrolled
                    if !result.failures.isEmpty {
                        self.logger.warning("existing connections of some network namespaces not enrolled", metadata: [
                            "subscriber": "\(slot)", "namespaces": "\(result.failures.count)",
                            "first": "\(result.failures.first ?? "")",
                        ])
                    }
                } catch {
                    self.logger.warning("existing connections not enrolled for a subscriber", metadata: [
                        "subscriber": "\(slot)", "error": "\(error)",
                    ])
                }
                let names = subscription.rules.rules.map(\.name)
                return Joined(sink: sink, ruleNames: names, filter: subscription.filter.source, existingEnrolled: existing)
            })
        } catch let error as SubscriberProtocol.RequestError {
            return .failure(error)
        } catch {
            return .failure(.init("\(error)"))
        }
    }

    /// A subscriber disconnected: nothing more is queued for it at once; its selections and rules leave
    /// the kernel tables, and its bit leaves every enrolled socket before the slot can be reused.
    package func unsubscribe(_ sink: SubscriberSink) async {
        let slot = sink.slot
        let present = registry.withLock { registry -> Bool in
            guard registry.sinks[slot] === sink else { return false }
            registry.sinks[slot] = nil
            return true
        }
        guard present else { return }
        do {
            try await kernel.run { program in
                var next = program.subscriptions
                next[slot] = nil
                self.recordNextGeneration(program.ruleGeneration &+ 1, try next.tables())
                try program.apply(next, forceNewRules: true)
            }
            let counters = sink.counters
            logger.info("subscriber left", metadata: [
                "subscriber": "\(slot)", "delivered": "\(counters.delivered)", "dropped": "\(counters.dropped)",
            ])
        } catch {
            logger.error("removing a subscriber from the kernel tables failed", metadata: ["subscriber": "\(slot)", "error": "\(error)"])
        }
    }

    /// Shutdown: every subscriber gets what is queued, then an `end` line; waits until written (bounded).
    package func finishAll(reason: String, timeoutSeconds: Double) async {
        let sinks = registry.withLock { Array($0.sinks.values) }
        for sink in sinks {
            let counters = sink.counters
            sink.finish(SubscriberProtocol.endLine(reason: reason, delivered: counters.delivered, dropped: counters.dropped))
        }
        let deadline = ContinuousClock.now + .milliseconds(Int(timeoutSeconds * 1000))
        while ContinuousClock.now < deadline && !sinks.allSatisfy(\.isDrained) {
            try? await Task.sleep(for: .milliseconds(20))
        }
        for sink in sinks { sink.channel.close(promise: nil) }
    }
}
