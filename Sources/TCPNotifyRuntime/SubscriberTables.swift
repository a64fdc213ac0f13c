import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyPoll

/// What `serve` changes as subscribers join, leave and reload: their selections and rules, merged into
/// shared tables. The BPF program keeps them in kernel maps (`TCPNotifyProgram`); without BPF, the
/// poller applies them in user space (`PollSubscriptions`). Records carry the bits of the subscribers
/// that selected the socket either way.
public protocol SubscriberTables: AnyObject {
    var subscriptions: SubscriptionSet { get }
    var tables: SharedTables { get }
    /// Records of the current rules carry it; `apply(_:forceNewRules: true)` adds exactly one.
    var ruleGeneration: UInt32 { get }
    func freeSubscriberSlot(from: Int) -> Int?
    func apply(_ next: SubscriptionSet, forceNewRules: Bool) throws
    /// The sockets `subscribers` select now start to be watched for them.
    func enrollExisting(in namespaces: [NetworkNamespace], subscribers: UInt32) throws -> ExistingEnrollment
    /// Subscriber 0's (the config file's) selection and rules.
    func replaceSelection(filter compiled: CompiledFilter, tuples newTuples: [TupleEntry]) throws
    func replaceRules(_ compiled: CompiledRules) throws
}

extension TCPNotifyProgram: SubscriberTables {}

/// A source `serve` can run on: it exposes its subscriber tables (on the caller's thread, locked).
public protocol SubscriberTablesSource: NotificationSource {
    func withTables<T>(_ body: (any SubscriberTables) throws -> T) rethrows -> T
}

extension PushSource: SubscriberTablesSource {
    public func withTables<T>(_ body: (any SubscriberTables) throws -> T) rethrows -> T {
        try withProgram { try body($0) }
    }
}

/// The subscribers' tables over one `PollingWatcher`: the same merge as the kernel's (so the hub reads
/// records the same way), applied at each poll. Used under `PollSource`'s lock.
public final class PollSubscriptions: SubscriberTables {
    private let watcher: PollingWatcher
    public private(set) var subscriptions = SubscriptionSet()
    public private(set) var tables = SharedTables()
    private var tuples: [TupleEntry] = []

    init(watcher: PollingWatcher) {
        self.watcher = watcher
        watcher.replaceSubscribers([], tuples: [])
    }

    public var ruleGeneration: UInt32 { watcher.ruleGeneration }

    public func freeSubscriberSlot(from: Int) -> Int? {
        (from..<SubscriptionSet.maxSubscribers).first { subscriptions[$0] == nil }
    }

    public func apply(_ next: SubscriptionSet, forceNewRules: Bool) throws {
        let nextTables: SharedTables
        do {
            nextTables = try next.tables()
        } catch {
            throw BPFError.invalidArgument(error.message)
        }
        if forceNewRules || nextTables.rules != tables.rules || nextTables.subscriberRules != tables.subscriberRules {
            watcher.replaceRules(nextTables.rules)
        }
        let selections = (0..<SubscriptionSet.maxSubscribers).compactMap { slot in
            next[slot].map { SubscriberSelection(slot: slot, filter: $0.filter, usesTuples: $0.usesTuples) }
        }
        watcher.replaceSubscribers(selections, tuples: tuples)
        subscriptions = next
        tables = nextTables
    }

    /// Polling sees every socket at its next poll: this counts those selected already.
    public func enrollExisting(in namespaces: [NetworkNamespace], subscribers: UInt32) throws -> ExistingEnrollment {
        var result = ExistingEnrollment()
        for slot in 0..<SubscriptionSet.maxSubscribers where subscribers & (UInt32(1) << UInt32(slot)) != 0 {
            result.enrolled += UInt64(watcher.trackedCount(subscriber: slot))
        }
        result.namespaces = watcher.namespaceCount
        return result
    }

    public func replaceSelection(filter compiled: CompiledFilter, tuples newTuples: [TupleEntry]) throws {
        var next = subscriptions
        next[0] = Subscription(
            filter: compiled, rules: subscriptions[0]?.rules ?? CompiledRules(rules: [], terms: [], clauses: []),
            usesTuples: !newTuples.isEmpty)
        tuples = newTuples
        try apply(next, forceNewRules: false)
    }

    public func replaceRules(_ compiled: CompiledRules) throws {
        var next = subscriptions
        next[0] = Subscription(
            filter: subscriptions[0]?.filter ?? CompiledFilter(matchAll: true, predicates: [], clauses: [], source: ""),
            rules: compiled, usesTuples: subscriptions[0]?.usesTuples ?? false)
        try apply(next, forceNewRules: true)
    }
}

extension PollSource: SubscriberTablesSource {
    public func withTables<T>(_ body: (any SubscriberTables) throws -> T) rethrows -> T {
        try withSubscriptions { try body($0) }
    }
}
