/// Which sockets a `serve` subscription is about besides its filter, in the terms users think in: a
/// cgroup v2 directory (and what is below it), a systemd unit's cgroup, or a process's sockets. At most
/// one is set; none means every socket the daemon sees.
public struct SubscriptionScope: Sendable, Equatable, Hashable {
    public var cgroup: String?
    public var unit: String?
    public var pid: Int32?

    public init(cgroup: String? = nil, unit: String? = nil, pid: Int32? = nil) {
        self.cgroup = cgroup
        self.unit = unit
        self.pid = pid
    }

    public var isEmpty: Bool { cgroup == nil && unit == nil && pid == nil }
}
