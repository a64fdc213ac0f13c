import Foundation
import Glibc
import TCPNotifyBPF
import TCPNotifyCore

/// The polling fallback: sock_diag dumps of every network namespace, selected in the kernel by the
/// filter's bytecode, with the rules evaluated here by the reference evaluator (`CompiledRules.step`),
/// which has exactly the kernel program's semantics. Differences from the BPF mode, all inherent in
/// polling: rules see a socket only at polls (a condition that comes and goes between two polls is
/// missed, and a short connection may never be seen); `age` counts from the first poll that saw the
/// socket; the close record carries the last polled tcp_info, not the state at close.
/// Not thread-safe: one owner polls and reconfigures.
public final class PollingWatcher {
    public private(set) var rules: CompiledRules
    public private(set) var ruleGeneration: UInt32 = 1
    public private(set) var statistics = WatchStatistics()
    public private(set) var pollingStatistics = PollingStatistics()
    /// False when the filter is too large for sock_diag bytecode and is applied here only.
    public private(set) var filtersInKernel = true

    private let configuration: PollingConfiguration
    private var filter: CompiledFilter
    private var bytecode: [UInt8] = []
    private var tuples: Set<TupleEntry> = []
    private let cgroupScope: CgroupScope?
    private var probes: [NamespaceKey: Probe] = [:]
    /// Namespaces that could not be opened at the last enumeration (counted once each).
    private var unreachableNamespaces: Set<NamespaceKey> = []
    private var tracked: [UInt64: TrackedSocket] = [:]
    /// Sockets seen and not selected (tuples, cgroup): a socket's endpoints and cgroup never change.
    private var rejected: Set<UInt64> = []
    /// After a selection change, sockets the new bytecode hides are forgotten without a close record.
    private var forgetUnseenSilently = false
    /// `serve`: each subscriber's selection (records carry the bits of those selecting the socket);
    /// nil: the one selection of `filter` (subscriber 0).
    private var subscriberSelections: [SubscriberSelection]?

    struct NamespaceKey: Hashable, Comparable {
        var device: UInt64
        var inode: UInt64
        static func < (a: Self, b: Self) -> Bool { (a.device, a.inode) < (b.device, b.inode) }
    }

    struct Probe {
        var namespace: NetworkNamespace
        var client: SockDiagClient
    }

    struct TrackedSocket {
        var namespace: NamespaceKey
        var firstSeenNanoseconds: UInt64
        var ruleState = RuleSocketState()
        var notifications: UInt64 = 0
        var last: DiagSocket
        var lastInfo: TCPInfo?
        var lastRulesTrue: UInt32 = 0
        /// The subscribers selecting it (bit i = slot i).
        var subscribers: UInt32 = 1
    }

    public init(configuration: PollingConfiguration) throws(PollingError) {
        self.configuration = configuration
        rules = configuration.rules
        filter = configuration.filter
        cgroupScope = try configuration.cgroupPath.map { path throws(PollingError) in try CgroupScope(path: path) }
        applySelection(filter: configuration.filter, tuples: configuration.tuples)
        // The process's own namespace must work, or nothing would ever be seen.
        do {
            _ = try SockDiagClient().dump(bytecode: bytecode)
        } catch {
            throw .sockDiag(error)
        }
        refreshNamespaces()
    }

    /// New rules for every socket at the next poll; each socket re-arms (as when the kernel's rule
    /// generation changes).
    public func replaceRules(_ compiled: CompiledRules) {
        rules = compiled
        ruleGeneration &+= 1
        for cookie in tracked.keys { tracked[cookie]?.ruleState = RuleSocketState() }
    }

    /// A new selection for sockets seen from the next poll on. Sockets already followed that the new
    /// filter excludes drop out of the dumps and are forgotten without a close record.
    public func replaceSelection(filter compiled: CompiledFilter, tuples newTuples: [TupleEntry]) {
        applySelection(filter: compiled, tuples: newTuples)
        forgetUnseenSilently = true
    }

    private func applySelection(filter compiled: CompiledFilter, tuples newTuples: [TupleEntry]) {
        filter = compiled
        tuples = Set(newTuples)
        do {
            bytecode = try SockDiagBytecode.compile(compiled)
            filtersInKernel = true
        } catch {
            bytecode = [] // too large for 16-bit jumps: dump everything and filter here
            filtersInKernel = false
        }
    }

    /// `serve`: the subscribers' selections replace the one filter, at once: sockets followed are
    /// selected again (those no longer selected are forgotten without a close record), those passed
    /// over are looked at again at the next poll. Every socket is dumped; the selections apply here.
    public func replaceSubscribers(_ selections: [SubscriberSelection], tuples newTuples: [TupleEntry]) {
        subscriberSelections = selections
        tuples = Set(newTuples)
        bytecode = []
        filtersInKernel = false
        rejected.removeAll()
        let poll = pollingStatistics.polls
        for (cookie, entry) in tracked {
            let mask = selectingSubscribers(entry.last, poll: poll)
            if mask == 0 { tracked[cookie] = nil } else { tracked[cookie]?.subscribers = mask }
        }
    }

    /// Sockets followed now that subscriber `slot` selects.
    public func trackedCount(subscriber slot: Int) -> Int {
        tracked.values.reduce(0) { $0 + ($1.subscribers & (UInt32(1) << UInt32(slot)) != 0 ? 1 : 0) }
    }

    /// A poll took longer than the interval, so the next one starts late.
    public func recordLatePoll() { pollingStatistics.latePolls += 1 }

    /// Network namespaces polled now.
    public var namespaceCount: Int { probes.count }
    /// Sockets selected and tracked now (the polling counterpart of enrolled-and-not-closed).
    public var trackedCount: Int { tracked.count }

    /// One poll: every namespace dumped, the rules checked on every selected socket, and close records
    /// for sockets that notified and are gone. Notifications are in namespace order, then dump order.
    public func poll() -> [SocketNotification] {
        if pollingStatistics.polls % configuration.namespaceRefreshPolls == 0 { refreshNamespaces() }
        let pollIndex = pollingStatistics.polls
        var notifications: [SocketNotification] = []
        var seen = Set<UInt64>()
        var failed = Set<NamespaceKey>()
        for key in probes.keys.sorted() {
            guard let probe = probes[key] else { continue }
            let interruptedBefore = probe.client.interruptedDumps
            let now = MonotonicClock.nanoseconds()
            let sockets: [DiagSocket]
            do {
                sockets = try probe.client.dump(bytecode: bytecode)
            } catch {
                pollingStatistics.dumpErrors += 1
                failed.insert(key)
                continue
            }
            pollingStatistics.dumpsInterrupted += probe.client.interruptedDumps - interruptedBefore
            // Without tcp_info it is a mini socket (an orphan's FIN_WAIT2 kept as a timewait socket):
            // the full socket has closed, as the BPF program sees it, so it counts as gone.
            for socket in sockets where socket.info != nil && seen.insert(socket.cookie).inserted {
                if let notification = observe(socket, namespace: key, now: now, poll: pollIndex) {
                    notifications.append(notification)
                }
            }
        }
        notifications += forgetVanished(seen: seen, failedNamespaces: failed)
        rejected.formIntersection(seen)
        pollingStatistics.namespaces = UInt64(probes.count - failed.count)
        pollingStatistics.polls += 1
        return notifications
    }

    /// The rules for one socket at this poll; a notification when one fires.
    private func observe(_ socket: DiagSocket, namespace: NamespaceKey, now: UInt64, poll: UInt64) -> SocketNotification? {
        if rejected.contains(socket.cookie) { return nil }
        if tracked[socket.cookie] == nil {
            statistics.established += 1
            let subscribers = selectingSubscribers(socket, poll: poll)
            guard subscribers != 0 else {
                rejected.insert(socket.cookie)
                return nil
            }
            statistics.enrolled += 1
            tracked[socket.cookie] = TrackedSocket(namespace: namespace, firstSeenNanoseconds: now, last: socket, subscribers: subscribers)
        }
        guard var entry = tracked[socket.cookie], let info = socket.info else { return nil }
        entry.last = socket
        statistics.events += 1
        let age = now >= entry.firstSeenNanoseconds ? now - entry.firstSeenNanoseconds : 0
        let (rulesTrue, fired) = rules.step(&entry.ruleState, nowNanosecondsSinceEnrollment: age) { operand in
            if case .field(let field) = operand { return info[field] }
            return 0
        }
        entry.lastInfo = info
        entry.lastRulesTrue = rulesTrue
        var notification: SocketNotification?
        if fired != 0 {
            entry.notifications += 1
            statistics.notifications += 1
            notification = SocketNotification(
                trigger: .poll, family: socket.family, local: socket.local, remote: socket.remote, cookie: socket.cookie,
                cgroupID: socket.cgroupID ?? 0, monotonicNanoseconds: now, rulesFired: fired, rulesTrue: rulesTrue,
                ruleGeneration: ruleGeneration, oldState: socket.state, socketNotificationCount: entry.notifications,
                info: info)
            notification?.subscribers = entry.subscribers
        }
        tracked[socket.cookie] = entry
        return notification
    }

    /// The subscribers selecting a socket (0: none): by their filters and the tuples, within the cgroup.
    private func selectingSubscribers(_ socket: DiagSocket, poll: UInt64) -> UInt32 {
        guard let selections = subscriberSelections else {
            return isSelected(socket, filter: filter, usesTuples: !tuples.isEmpty, poll: poll) ? 1 : 0
        }
        var mask: UInt32 = 0
        for selection in selections where isSelected(socket, filter: selection.filter, usesTuples: selection.usesTuples, poll: poll) {
            mask |= UInt32(1) << UInt32(selection.slot)
        }
        return mask
    }

    /// The filter again (exact with the bytecode; the only check without it), the tuples, the cgroup.
    private func isSelected(_ socket: DiagSocket, filter: CompiledFilter, usesTuples: Bool, poll: UInt64) -> Bool {
        guard filter.matches(localAddress: socket.local.address, localPort: socket.local.port,
                             remoteAddress: socket.remote.address, remotePort: socket.remote.port) else { return false }
        if usesTuples {
            let exact = TupleEntry(localAddress: socket.local.address, localPort: socket.local.port,
                                   remoteAddress: socket.remote.address, remotePort: socket.remote.port)
            var anyLocalPort = exact
            anyLocalPort.localPort = 0
            guard tuples.contains(exact) || tuples.contains(anyLocalPort) else { return false }
        }
        if let cgroupScope {
            guard let id = socket.cgroupID else {
                pollingStatistics.cgroupUnknown += 1
                return false
            }
            return cgroupScope.contains(id, poll: poll)
        }
        return true
    }

    /// Sockets not in this poll's dumps are gone (closed, or in TIME_WAIT): those that notified get a
    /// close record with their last polled tcp_info. Sockets of a namespace whose dump failed stay.
    private func forgetVanished(seen: Set<UInt64>, failedNamespaces: Set<NamespaceKey>) -> [SocketNotification] {
        var records: [SocketNotification] = []
        let now = MonotonicClock.nanoseconds()
        for (cookie, entry) in tracked where !seen.contains(cookie) && !failedNamespaces.contains(entry.namespace) {
            tracked[cookie] = nil
            guard !forgetUnseenSilently, configuration.notifyOnClose, entry.notifications > 0,
                  let info = entry.lastInfo else { continue }
            statistics.notifications += 1
            records.append(SocketNotification(
                trigger: .close, family: entry.last.family, local: entry.last.local, remote: entry.last.remote,
                cookie: cookie, cgroupID: entry.last.cgroupID ?? 0, monotonicNanoseconds: now, rulesFired: 0,
                rulesTrue: entry.lastRulesTrue, ruleGeneration: ruleGeneration, oldState: entry.last.state,
                socketNotificationCount: entry.notifications + 1, info: info))
            records[records.count - 1].subscribers = entry.subscribers
        }
        forgetUnseenSilently = false
        return records.sorted { $0.cookie < $1.cookie }
    }

    /// Opens a sock_diag socket in each network namespace not polled yet; drops the ones that are gone.
    private func refreshNamespaces() {
        var current: [NamespaceKey: Probe] = [:]
        var unreachable = Set<NamespaceKey>()
        for namespace in NetworkNamespaces.all() {
            let key = NamespaceKey(device: namespace.device, inode: namespace.inode)
            if current[key] != nil { continue }
            if let probe = probes[key] {
                current[key] = probe
                continue
            }
            do {
                let client = try NetworkNamespaces.run(in: namespace) { () throws -> SockDiagClient in try SockDiagClient() }
                current[key] = Probe(namespace: namespace, client: client)
            } catch let error as NamespaceError where error.errno == ENOENT {
                continue // the process holding it exited
            } catch {
                unreachable.insert(key)
            }
        }
        pollingStatistics.namespaceErrors += UInt64(unreachable.subtracting(unreachableNamespaces).count)
        unreachableNamespaces = unreachable
        probes = current
    }
}
