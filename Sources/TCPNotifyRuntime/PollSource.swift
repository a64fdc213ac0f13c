import Foundation
import Synchronization
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyPoll

/// sock_diag polling (no BPF): every interval a poll thread dumps the TCP sockets of every network
/// namespace and evaluates the rules in user space (`PollingWatcher`). Records carry trigger `poll`.
public final class PollSource: NotificationSource, @unchecked Sendable {
    public let kind = SourceKind.poll
    private let watcher: PollingWatcher
    private let lock = NSLock() // the watcher: the poll thread, reloads and statistics
    private let intervalNanoseconds: UInt64
    private var loop: PollLoop?
    /// `serve`: the subscribers' tables, made at the first use (nothing is selected until then).
    private var subscriptions: PollSubscriptions?

    public init(settings: SessionSettings) throws {
        watcher = try PollingWatcher(configuration: PollingConfiguration(
            filter: settings.inputs.filter, rules: settings.inputs.rules, tuples: settings.inputs.tuples,
            notifyOnClose: settings.notifyOnClose, cgroupPath: settings.cgroupPath))
        intervalNanoseconds = settings.pollIntervalNanoseconds
    }

    func withWatcher<T>(_ body: (PollingWatcher) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(watcher)
    }

    public var ruleGeneration: UInt32 { withWatcher { $0.ruleGeneration } }

    /// `serve`: the subscribers' selections and rules replace the session's, from the first call on.
    func withSubscriptions<T>(_ body: (PollSubscriptions) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        if subscriptions == nil { subscriptions = PollSubscriptions(watcher: watcher) }
        return try body(subscriptions!)
    }

    public func start(settings: SessionSettings, deliver: @escaping @Sendable ([SocketNotification]) -> Void,
                      events: @escaping SessionEventHandler) throws {
        let (namespaces, filtersInKernel) = withWatcher { ($0.namespaceCount, $0.filtersInKernel) }
        events(.polling(
            cgroup: settings.cgroupPath, interval: settings.pollIntervalText, namespaces: namespaces,
            rules: settings.inputs.rules.rules.count, filtersInKernel: filtersInKernel))
        let loop = PollLoop(source: self, intervalNanoseconds: intervalNanoseconds, deliver: deliver)
        self.loop = loop
        loop.start()
    }

    /// The poll thread keeps its own schedule.
    public var tickMilliseconds: UInt64? { nil }
    public func tick(events: SessionEventHandler) {}
    public func sweepAndSettle(events: SessionEventHandler) {}

    /// The new selection applies from the next poll; sockets it excludes are dropped without a close record.
    public func replace(_ inputs: SessionInputs, names: RuleNameBook) throws {
        withWatcher { watcher in
            watcher.replaceSelection(filter: inputs.filter, tuples: inputs.tuples)
            watcher.replaceRules(inputs.rules)
            names.record(generation: watcher.ruleGeneration, rules: inputs.rules)
        }
    }

    public func statistics() -> SourceStatistics {
        withWatcher { watcher in
            var statistics = watcher.statistics
            statistics.received = statistics.notifications // every record is delivered: there is no ring to drop from
            return SourceStatistics(
                statistics: statistics, polling: watcher.pollingStatistics, watchedSockets: UInt64(watcher.trackedCount))
        }
    }

    /// Returns once the poll in progress, if any, has finished and been delivered.
    public func stop() -> SourceStatistics {
        loop?.stop()
        return statistics()
    }
}

/// The poll thread: polls, hands the notifications over, sleeps until the next tick. Polls keep a fixed
/// schedule; one that overruns the interval is counted and the schedule restarts from its end.
final class PollLoop: @unchecked Sendable {
    private unowned let source: PollSource
    private let intervalNanoseconds: UInt64
    private let deliver: @Sendable ([SocketNotification]) -> Void
    private let stopping = Atomic<Bool>(false)
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private var started = false

    init(source: PollSource, intervalNanoseconds: UInt64, deliver: @escaping @Sendable ([SocketNotification]) -> Void) {
        self.source = source
        self.intervalNanoseconds = intervalNanoseconds
        self.deliver = deliver
    }

    func start() {
        started = true
        let thread = Thread { [self] in
            run()
            finished.signal()
        }
        thread.name = "tcpnotify-poll"
        thread.start()
    }

    func stop() {
        guard started else { return }
        started = false
        stopping.store(true, ordering: .releasing)
        wake.signal()
        finished.wait()
    }

    private func run() {
        var next = MonotonicClock.nanoseconds()
        while !stopping.load(ordering: .acquiring) {
            let notifications = source.withWatcher { $0.poll() }
            if !notifications.isEmpty { deliver(notifications) }
            next += intervalNanoseconds
            let now = MonotonicClock.nanoseconds()
            if now >= next {
                source.withWatcher { $0.recordLatePoll() }
                next = now
                continue
            }
            _ = wake.wait(timeout: .now() + .nanoseconds(Int(next - now)))
        }
    }
}
