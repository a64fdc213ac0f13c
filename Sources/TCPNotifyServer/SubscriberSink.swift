import NIOCore
import Synchronization
import TCPNotifyCore
import TCPNotifyExport

/// What records of one rule-table generation mean: which merged rules each subscriber owns, and its
/// names for them. Records written just before a change still carry the old generation.
package struct GenerationInfo: Sendable {
    package var subscriberRules: [UInt32]
    package var ruleNames: [Int: [String]]
    /// One name per merged rule for the metrics: the lowest subscriber's name for it.
    package var metricNames: [String]

    package init(_ tables: SharedTables) {
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
package final class SubscriberSink: Sendable {
    package let slot: Int
    /// Records of older generations were not evaluated with this subscriber's rules.
    package let joinedGeneration: UInt32
    package let channel: Channel

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

    /// The subscription's cgroup, unit or process; nil: every socket its filter selects.
    package let scope: SubscriberScopeFilter?

    package init(slot: Int, joinedGeneration: UInt32, channel: Channel, queueBytes: Int, scope: SubscriberScopeFilter? = nil) {
        self.scope = scope
        self.slot = slot
        self.joinedGeneration = joinedGeneration
        self.channel = channel
        state = Mutex(State(queue: SubscriberQueue(capacityBytes: queueBytes)))
    }

    /// Whether `notification` goes to this subscriber, given the rules of its that fired: new rules
    /// fired, or the socket closes after it was reported.
    package func wants(_ notification: SocketNotification, fired: UInt32) -> Bool {
        if let scope, !scope.admits(notification) { return false }
        return state.withLock { state in
            if notification.trigger == .close { return state.notifiedCookies.remove(notification.cookie) != nil || fired != 0 }
            guard fired != 0 else { return false }
            state.notifiedCookies.insert(notification.cookie)
            return true
        }
    }

    /// A full queue drops the next line anyway: the reader counts it without formatting it.
    package func dropIfFull(metrics: NotificationMetrics?) -> Bool {
        let dropped = state.withLock { state -> Bool in
            guard state.queue.isFull else { return false }
            state.queue.drop()
            return true
        }
        if dropped { metrics?.recordSubscriberDrops(subscriber: String(slot)) }
        return dropped
    }

    /// From the kernel reader: queue (or drop and count) and make sure a drain is coming. Never waits.
    package func offer(_ lines: [String], metrics: NotificationMetrics?) {
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
    package func start(first: String) {
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
    package func finish(_ line: String) {
        let schedule = state.withLock { state -> Bool in
            state.queue.append(line)
            guard state.started, !state.drainScheduled else { return false }
            state.drainScheduled = true
            return true
        }
        if schedule { channel.eventLoop.execute { self.drain() } }
    }

    package var isDrained: Bool { state.withLock { $0.queue.isEmpty } }

    package var counters: (delivered: UInt64, dropped: UInt64, queuedBytes: Int) {
        state.withLock { ($0.delivered, $0.queue.droppedTotal, $0.queue.queuedBytes) }
    }

    /// On the event loop: writes while the socket takes data. When it stops taking data, the drain stays
    /// "scheduled" and the writability change resumes it, so offers do not pile up tasks.
    package func drain() {
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
