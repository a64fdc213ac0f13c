/// `{"type":"notification",...}`: one notification, as `watch --format json` prints it and `serve` sends it.
extension Wire {
    public struct Notification: WireLine, Equatable {
        public static let lineType = "notification"
        public var type = LineType<Self>()
        public var ts: Timestamp
        public var tsMonoNs: UInt64
        public var trigger: Trigger
        /// The names of the rules that notify now (empty for a close record).
        public var rules: [String]
        /// `addr:port` or `[v6]:port`.
        public var src: String
        public var dst: String
        /// `ipv4` or `ipv6`.
        public var family: String
        public var cookie: UInt64
        public var cgroupID: UInt64
        /// With a cgroup resolver: the cgroup's path, and the container or pod it names.
        public var cgroup: String?
        public var container: String?
        public var pod: String?
        /// State and close triggers: the state left.
        public var oldState: String?
        public var socketNotifications: UInt64
        /// `watch --diagnose`: the flow's current verdict.
        public var diagnosis: Verdict?
        public var tcpInfo: TCPInfoObject

        public init(
            ts: Timestamp, tsMonoNs: UInt64, trigger: Trigger, rules: [String], src: String, dst: String, family: String,
            cookie: UInt64, cgroupID: UInt64, cgroup: String? = nil, container: String? = nil, pod: String? = nil,
            oldState: String? = nil, socketNotifications: UInt64, diagnosis: Verdict? = nil, tcpInfo: TCPInfoObject
        ) {
            self.ts = ts
            self.tsMonoNs = tsMonoNs
            self.trigger = trigger
            self.rules = rules
            self.src = src
            self.dst = dst
            self.family = family
            self.cookie = cookie
            self.cgroupID = cgroupID
            self.cgroup = cgroup
            self.container = container
            self.pod = pod
            self.oldState = oldState
            self.socketNotifications = socketNotifications
            self.diagnosis = diagnosis
            self.tcpInfo = tcpInfo
        }

        enum CodingKeys: String, CodingKey {
            case type, ts, tsMonoNs = "ts_mono_ns", trigger, rules, src, dst, family, cookie, cgroupID = "cgroup_id"
            case cgroup, container, pod, oldState = "old_state", socketNotifications = "socket_notifications", diagnosis
            case tcpInfo = "tcp_info"
        }
    }

    /// `{"type":"snapshot",...}`: one socket of `tcpnotify snapshot --format json`.
    public struct Snapshot: WireLine, Equatable {
        public static let lineType = "snapshot"
        public var type = LineType<Self>()
        public var ts: Timestamp
        public var tsMonoNs: UInt64
        public var src: String
        public var dst: String
        public var family: String
        public var cookie: UInt64
        public var cgroupID: UInt64
        public var cgroup: String?
        public var container: String?
        public var pod: String?
        /// The network namespace's inode (what `ls -L /proc/PID/ns/net` shows).
        public var netns: UInt64
        public var tcpInfo: TCPInfoObject

        public init(
            ts: Timestamp, tsMonoNs: UInt64, src: String, dst: String, family: String, cookie: UInt64, cgroupID: UInt64,
            cgroup: String? = nil, container: String? = nil, pod: String? = nil, netns: UInt64, tcpInfo: TCPInfoObject
        ) {
            self.ts = ts
            self.tsMonoNs = tsMonoNs
            self.src = src
            self.dst = dst
            self.family = family
            self.cookie = cookie
            self.cgroupID = cgroupID
            self.cgroup = cgroup
            self.container = container
            self.pod = pod
            self.netns = netns
            self.tcpInfo = tcpInfo
        }

        enum CodingKeys: String, CodingKey {
            case type, ts, tsMonoNs = "ts_mono_ns", src, dst, family, cookie, cgroupID = "cgroup_id", cgroup, container, pod
            case netns, tcpInfo = "tcp_info"
        }
    }
}

/// Triggers are written by name (`"trigger":"rtt"`).
extension Trigger: Codable {
    public init(from decoder: any Decoder) throws {
        let name = try decoder.singleValueContainer().decode(String.self)
        guard let trigger = Trigger.allCases.first(where: { $0.description == name }) else {
            throw DecodingError.dataCorrupted(.init(
                codingPath: decoder.codingPath,
                debugDescription: "unknown trigger '\(name)' (\(Trigger.allCases.map(\.description).joined(separator: ", ")))"))
        }
        self = trigger
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
