import Dispatch
import Foundation
import Logging
import NIOCore
import Synchronization
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyExport
import TCPNotifyRuntime

/// What records of one rule-table generation mean: which merged rules each subscriber owns, and its
/// names for them. Records written just before a change still carry the old generation.
struct GenerationInfo: Sendable {
    var subscriberRules: [UInt32]
    var ruleNames: [Int: [String]]
    /// One name per merged rule for the metrics: the lowest subscriber's name for it.
    var metricNames: [String]

    init(_ tables: SharedTables) {
        subscriberRules = tables.subscriberRules
        ruleNames = tables.ruleNames
        metricNames = (0..<tables.rules.rules.count).map { index in
            tables.ruleNames.keys.sorted().lazy.compactMap { slot -> String? in
                let names = tables.ruleNames[slot] ?? []
                return index < names.count && !names[index].isEmpty ? names[index] : nil
            }.first ?? tables.rules.rules[index].name
        }
    }
}

/// One connected subscriber: its bounded queue, filled by the kernel reader and drained on its
/// channel's event loop while the socket accepts data.
final class SubscriberSink: Sendable {
    let slot: Int
    /// Records of older generations were not evaluated with this subscriber's rules.
    let joinedGeneration: UInt32
    let channel: Channel

    private struct State {
        var queue: SubscriberQueue
        /// A drain is scheduled or waiting for the channel to become writable.
        var drainScheduled = false
        /// Lines wait until the `subscribed` reply is out.
        var started = false
        var delivered: UInt64 = 0
        /// Sockets this subscriber was told about: they get the close record.
        var notifiedCookies = Set<UInt64>()
    }

    private let state: Mutex<State>

    init(slot: Int, joinedGeneration: UInt32, channel: Channel, queueBytes: Int) {
        self.slot = slot
        self.joinedGeneration = joinedGeneration
        self.channel = channel
        state = Mutex(State(queue: SubscriberQueue(capacityBytes: queueBytes)))
    }

    /// Whether `notification` goes to this subscriber, given the rules of its that fired: new rules
    /// fired, or the socket closes after it was reported.
    func wants(_ notification: SocketNotification, fired: UInt32) -> Bool {
        state.withLock { state in
            if notification.trigger == .close { return state.notifiedCookies.remove(notification.cookie) != nil || fired != 0 }
            guard fired != 0 else { return false }
            state.notifiedCookies.insert(notification.cookie)
            return true
        }
    }

    /// A full queue drops the next line anyway: the reader counts it without formatting it.
    func dropIfFull(metrics: NotificationMetrics?) -> Bool {
        let dropped = state.withLock { state -> Bool in
            guard state.queue.isFull else { return false }
            state.queue.drop()
            return true
        }
        if dropped { metrics?.recordSubscriberDrops(subscriber: String(slot)) }
        return dropped
    }

    /// From the kernel reader: queue (or drop and count) and make sure a drain is coming. Never waits.
    func offer(_ lines: [String], metrics: NotificationMetrics?) {
        let (schedule, dropped) = state.withLock { state -> (Bool, UInt64) in
            let before = state.queue.droppedTotal
            for line in lines { state.queue.offer(line) }
            let dropped = state.queue.droppedTotal - before
            guard state.started, !state.drainScheduled else { return (false, dropped) }
            state.drainScheduled = true
            return (true, dropped)
        }
        if dropped > 0 { metrics?.recordSubscriberDrops(subscriber: String(slot), count: dropped) }
        if schedule { channel.eventLoop.execute { self.drain() } }
    }

    /// Sends `first` (the `subscribed` reply), then everything queued meanwhile.
    func start(first: String) {
        channel.eventLoop.execute {
            self.write([first])
            self.state.withLock { state in
                state.started = true
                state.drainScheduled = true
            }
            self.drain()
        }
    }

    /// The daemon's last line, queued after everything else even when the queue is full.
    func finish(_ line: String) {
        let schedule = state.withLock { state -> Bool in
            state.queue.append(line)
            guard state.started, !state.drainScheduled else { return false }
            state.drainScheduled = true
            return true
        }
        if schedule { channel.eventLoop.execute { self.drain() } }
    }

    var isDrained: Bool { state.withLock { $0.queue.isEmpty } }

    var counters: (delivered: UInt64, dropped: UInt64, queuedBytes: Int) {
        state.withLock { ($0.delivered, $0.queue.droppedTotal, $0.queue.queuedBytes) }
    }

    /// On the event loop: writes while the socket takes data. When it stops taking data, the drain stays
    /// "scheduled" and the writability change resumes it, so offers do not pile up tasks.
    func drain() {
        while channel.isWritable {
            let batch = state.withLock { state -> [String]? in
                guard state.started else {
                    state.drainScheduled = false
                    return nil
                }
                let lines = state.queue.take(maxBytes: 64 << 10)
                if lines.isEmpty {
                    state.drainScheduled = false
                    return nil
                }
                state.delivered += UInt64(lines.count { !$0.hasPrefix("{\"type\":\"dropped\"") })
                return lines
            }
            guard let batch else { return }
            write(batch)
        }
        if !channel.isActive { state.withLock { $0.drainScheduled = false } }
    }

    private func write(_ lines: [String]) {
        var buffer = channel.allocator.buffer(capacity: lines.reduce(0) { $0 + $1.utf8.count + 1 })
        for line in lines {
            buffer.writeString(line)
            buffer.writeInteger(UInt8(ascii: "\n"))
        }
        channel.writeAndFlush(buffer, promise: nil)
    }
}

/// Subscribers, their rule names by generation, and the fan-out of kernel records to them.
final class SubscriptionHub: Sendable {
    let kernel: KernelOwner
    let logger: Logger
    let queueBytes: Int
    /// Subscriber 0, the config file's subscription: its lines go to stdout, like `watch`.
    let output: LineOutput
    let export: WatchExport
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
    /// Sockets subscriber 0 (stdout) was told about: they get the close record.
    private let configCookies = Mutex(Set<UInt64>())

    init(kernel: KernelOwner, logger: Logger, queueBytes: Int, output: LineOutput, export: WatchExport,
         initial: (generation: UInt32, tables: SharedTables)) {
        self.kernel = kernel
        self.logger = logger
        self.queueBytes = queueBytes
        self.output = output
        self.export = export
        realtimeOffsetNanoseconds = Clocks.realtimeOffsetNanoseconds()
        registry.withLock { $0.record(initial.generation, GenerationInfo(initial.tables)) }
    }

    var subscriberCount: Int { registry.withLock { $0.sinks.count } }
    var unknownGenerationRecords: UInt64 { registry.withLock { $0.unknownGeneration } }

    /// Registers what records of the next generation will mean (call before the kernel writes it).
    func recordNextGeneration(_ generation: UInt32, _ tables: SharedTables) {
        registry.withLock { $0.record(generation, GenerationInfo(tables)) }
    }

    // MARK: Fan-out (the ring reader thread)

    /// Formats each record once per subscriber that wants it, with that subscriber's rule names, and
    /// queues it. Never blocks on a subscriber: a full queue drops and counts.
    func dispatch(_ batch: [SocketNotification]) {
        let (sinks, generations) = registry.withLock { registry in
            registry.receivedRecords += UInt64(batch.count)
            return (registry.sinks, registry.generations)
        }
        var perSink: [Int: [String]] = [:]
        var stdoutLines: [String] = []
        var unknown: UInt64 = 0
        let metrics = export.metrics
        let attribution = export.cgroupPaths?.resolver
        for notification in batch {
            guard let info = generations[notification.ruleGeneration] else {
                unknown += 1
                continue
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
        if unknown > 0 { registry.withLock { $0.unknownGeneration += unknown } }
    }

    // MARK: Joining and leaving

    struct Joined: Sendable {
        let sink: SubscriberSink
        let ruleNames: [String]
        let filter: String
        let existingEnrolled: UInt64
    }

    /// Compiles a subscriber's request, merges it into the shared tables and enrolls its existing
    /// connections. Errors are messages for the subscriber.
    func subscribe(filter: String, rules: [String], channel: Channel) async -> Result<Joined, SubscriberProtocol.RequestError> {
        let compiledFilter: CompiledFilter, compiledRules: CompiledRules
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
                let sink = SubscriberSink(slot: slot, joinedGeneration: generation, channel: channel, queueBytes: queueBytes)
                self.recordNextGeneration(generation, tables)
                self.registry.withLock { $0.sinks[slot] = sink }
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
    func unsubscribe(_ sink: SubscriberSink) async {
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
    func finishAll(reason: String, timeoutSeconds: Double) async {
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
