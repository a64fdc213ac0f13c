/// The three machines of a `NetworkLab`, each a network namespace.
public enum LabHost: String, Sendable, CaseIterable {
    case client, router, server

    /// The last part of the namespace name (`tnl-<pid>-<n>-c`).
    var namespaceSuffix: String {
        switch self {
        case .client: "c"
        case .router: "r"
        case .server: "s"
        }
    }
}

/// How the lab's end hosts are joined.
public enum LabLayout: String, Sendable {
    /// client —veth— router —veth— server: delay, rate, queue and loss go in the router.
    case routed
    /// client —veth— server, no router: a microsecond path with nothing on it (no impairments possible).
    case direct

    var hosts: [LabHost] { self == .routed ? LabHost.allCases : [.client, .server] }
}

/// The address family a scenario's flow uses (the lab gives every interface both).
public enum LabFamily: String, Sendable {
    case ipv4
    case ipv6

    public var serverAddress: String { self == .ipv4 ? LabAddress.serverIPv4 : LabAddress.serverIPv6 }
    public var clientAddress: String { self == .ipv4 ? LabAddress.clientIPv4 : LabAddress.clientIPv6 }

    /// `addr:port`, or `[addr]:port` for IPv6, as `tcpnotify` prints endpoints and the traffic client takes them.
    public func endpoint(_ address: String, port: UInt16) -> String {
        self == .ipv4 ? "\(address):\(port)" : "[\(address)]:\(port)"
    }
}

/// A token-bucket (tbf) bottleneck on the router's egress toward one end host.
public struct Bottleneck: Sendable, Equatable {
    public var rateKbitPerSecond: Int
    /// Bytes that may leave back to back; must hold at least one MTU-sized packet.
    public var burstBytes: Int
    /// Bytes queued before tbf drops, which sets the standing delay under load.
    public var queueLimitBytes: Int
    /// `.client` or `.server`: whose direction is shaped.
    public var toward: LabHost

    public init(rateKbitPerSecond: Int, burstBytes: Int = 32 * 1024, queueLimitBytes: Int = 64 * 1024, toward: LabHost = .server) {
        self.rateKbitPerSecond = rateKbitPerSecond
        self.burstBytes = burstBytes
        self.queueLimitBytes = queueLimitBytes
        self.toward = toward
    }
}

/// A constant delay added in the router: packets between client and server detour through a TUN device
/// where `tcpnotify-lab delay` holds each one for `millisecondsEachWay`, so the RTT grows by twice that.
public struct PathDelay: Sendable, Equatable {
    public var millisecondsEachWay: Double

    public init(millisecondsEachWay: Double) {
        self.millisecondsEachWay = millisecondsEachWay
    }
}

/// Addresses and interface names of the lab: client —veth— router —veth— server.
public enum LabAddress {
    public static let clientIPv4 = "10.77.1.1"
    public static let routerClientSideIPv4 = "10.77.1.254"
    public static let serverIPv4 = "10.77.2.1"
    public static let routerServerSideIPv4 = "10.77.2.254"

    public static let clientIPv6 = "fd77:1::1"
    public static let routerClientSideIPv6 = "fd77:1::fe"
    public static let serverIPv6 = "fd77:2::1"
    public static let routerServerSideIPv6 = "fd77:2::fe"

    /// The client's and the server's only interface (names are per namespace, so they never clash).
    public static let hostInterface = "eth0"

    /// The router's TUN device that holds packets when the lab has a `PathDelay`.
    public static let delayInterface = "delay0"
    /// The routing table that sends forwarded packets into the delay device.
    static let delayRoutingTable = "100"

    /// The router's interface toward `.client` or `.server`.
    public static func routerInterface(toward host: LabHost) -> String {
        host == .client ? "to-client" : "to-server"
    }
}

/// One veth link: an end host's `eth0` and the router's interface toward it, with both sides' addresses.
struct LabLink {
    let host: LabHost
    let hostIPv4: String, routerIPv4: String, ipv4PrefixLength: Int
    let hostIPv6: String, routerIPv6: String, ipv6PrefixLength: Int

    var routerInterface: String { LabAddress.routerInterface(toward: host) }

    static let all = [
        LabLink(host: .client, hostIPv4: LabAddress.clientIPv4, routerIPv4: LabAddress.routerClientSideIPv4, ipv4PrefixLength: 24,
                hostIPv6: LabAddress.clientIPv6, routerIPv6: LabAddress.routerClientSideIPv6, ipv6PrefixLength: 64),
        LabLink(host: .server, hostIPv4: LabAddress.serverIPv4, routerIPv4: LabAddress.routerServerSideIPv4, ipv4PrefixLength: 24,
                hostIPv6: LabAddress.serverIPv6, routerIPv6: LabAddress.routerServerSideIPv6, ipv6PrefixLength: 64),
    ]
}
