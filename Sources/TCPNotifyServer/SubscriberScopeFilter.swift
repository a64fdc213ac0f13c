import Synchronization
import TCPNotifyBPF
import TCPNotifyCore
import TCPNotifyPoll
import TCPNotifyRuntime

/// A serve subscription's `"cgroup"`, `"unit"` or `"pid"`, resolved as `watch --cgroup/--unit/--pid`
/// resolves them and applied to each record before it is formatted for the subscriber.
///
/// The kernel's filter table has no cgroup predicate (the daemon is attached once, for everyone), so
/// the scope is checked here: by the record's cgroup id against the ids of the cgroup and its
/// descendants (listed again, at most once a second, when an unknown id shows up), or by the process's
/// sockets. Connections outside the scope are still enrolled for this subscriber (and counted in
/// `existing_enrolled`); it never hears of them.
package final class SubscriberScopeFilter: Sendable {
    private enum Selection: Sendable {
        case cgroup(path: String)
        case process(ProcessSockets)
    }

    private struct CgroupIDs {
        var ids: Set<UInt64> = []
        var listedNanoseconds: UInt64 = 0
    }

    private static let relistNanoseconds: UInt64 = 1_000_000_000
    private let selection: Selection
    private let cgroupIDs = Mutex(CgroupIDs())

    package struct Failure: Error, CustomStringConvertible {
        package let description: String
    }

    /// Nil for an empty scope. Throws when the cgroup, unit or process does not exist, or lies outside
    /// `daemonCgroup` (the daemon would never see its sockets).
    package init?(_ scope: SubscriptionScope, daemonCgroup: String?) throws(Failure) {
        guard !scope.isEmpty else { return nil }
        let resolved: SocketScope
        do {
            resolved = try SocketScope.resolve(cgroup: scope.cgroup, unit: scope.unit, pid: scope.pid)
        } catch {
            throw Failure(description: "\(error)")
        }
        if let processSockets = resolved.processSockets {
            selection = .process(processSockets)
        } else {
            selection = .cgroup(path: resolved.cgroupPath ?? "/")
        }
        let path = resolved.cgroupPath ?? "/"
        if let daemonCgroup, !Self.isWithin(path, daemonCgroup) {
            throw Failure(description: "\(path) is not under \(daemonCgroup), where this daemon is attached: it sees no sockets "
                + "there (start serve with --cgroup at a common ancestor, or leave --cgroup out)")
        }
        if case .cgroup(let path) = selection { cgroupIDs.withLock { $0.ids = Set(CgroupTree.ids(under: path)) } }
    }

    package static func isWithin(_ path: String, _ ancestor: String) -> Bool {
        let trimmed = ancestor.hasSuffix("/") ? String(ancestor.dropLast()) : ancestor
        return path == ancestor || trimmed.isEmpty || path.hasPrefix(trimmed + "/")
    }

    /// Whether the record's socket is in the scope.
    package func admits(_ notification: SocketNotification) -> Bool {
        switch selection {
        case .process(let sockets):
            return !sockets.filter([notification], nowNanoseconds: MonotonicClock.nanoseconds()).isEmpty
        case .cgroup(let path):
            let now = MonotonicClock.nanoseconds()
            return cgroupIDs.withLock { state in
                if state.ids.contains(notification.cgroupID) { return true }
                // A cgroup made below the scope since the last listing.
                guard now &- state.listedNanoseconds >= Self.relistNanoseconds else { return false }
                state.ids = Set(CgroupTree.ids(under: path))
                state.listedNanoseconds = now
                return state.ids.contains(notification.cgroupID)
            }
        }
    }
}
