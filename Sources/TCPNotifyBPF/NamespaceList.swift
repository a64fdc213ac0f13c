import Glibc
import TCPNotifyCore

/// The network namespaces a per-namespace iterator visits, re-listed at most every `refreshSeconds`
/// (listing them scans /proc), and at once when /run/netns changes (one stat per call): a namespace made
/// with `ip netns add` after the start is swept at the next sweep, not up to 30 s later. Sockets there
/// that only receive get no TCP events, so the sweep is their only source of records.
struct NamespaceList {
    let refreshSeconds: UInt64
    private var namespaces: [NetworkNamespace] = []
    /// When the list was made, on the clock of BPF's timestamps (the sweep horizon compares them).
    private(set) var listedAtNanoseconds: UInt64 = 0
    private var namedDirectoryChange: timespec?

    init(refreshSeconds: UInt64) { self.refreshSeconds = refreshSeconds }

    mutating func current() -> [NetworkNamespace] {
        let now = MonotonicClock.nanoseconds()
        let change = Self.namedNamespacesChange()
        let namedChanged = change.map { new in
            namedDirectoryChange.map { $0.tv_sec != new.tv_sec || $0.tv_nsec != new.tv_nsec } ?? true
        } ?? false
        if namespaces.isEmpty || namedChanged || now - listedAtNanoseconds >= refreshSeconds * 1_000_000_000 {
            namespaces = NetworkNamespaces.all()
            listedAtNanoseconds = now
            namedDirectoryChange = change
        }
        return namespaces
    }

    mutating func set(_ list: [NetworkNamespace]) {
        namespaces = list
        listedAtNanoseconds = MonotonicClock.nanoseconds()
        namedDirectoryChange = Self.namedNamespacesChange()
    }

    /// The modification time of /run/netns (entries added or removed), nil if it does not exist.
    private static func namedNamespacesChange() -> timespec? {
        var status = stat()
        guard stat("/run/netns", &status) == 0 else { return nil }
        return status.st_mtim
    }
}
