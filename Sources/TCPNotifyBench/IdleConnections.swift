import Foundation
import TCPNotifyLab
import Glibc

/// Holds N established, idle loopback connections (both ends, 2N descriptors) for the benchmark, in a
/// process of their own so their descriptors and setup do not count against the benchmark.
///
/// Client sockets connect to `address` (a loopback address): `matchedCount` of them to `basePort` (the
/// port the benchmark's filter selects), the rest spread over `basePort + 1 ...`, at most
/// `connectionsPerPort` per port because one source address has only ~28k ephemeral ports per destination.
/// Keep the ports below the ephemeral range (32768+) so accepted sockets (sport = listener port,
/// dport = ephemeral) never match a `dport` filter.
///
/// One process holds at most `maximumPerProcess` connections: RLIMIT_NOFILE cannot be raised past its hard
/// limit without CAP_SYS_RESOURCE (20,000 on the project's machines), so larger sets take several helpers,
/// each listening on its own loopback address (127.0.0.K).
public struct IdleConnections {
    public let count: Int
    public let matchedCount: Int
    public let basePort: UInt16
    /// Host byte order, e.g. 0x7f000001.
    public let address: UInt32
    public static let connectionsPerPort = 20_000

    /// What fits in the current hard RLIMIT_NOFILE (two descriptors per connection, plus slack).
    public static var maximumPerProcess: Int {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let descriptors = Int(min(limit.rlim_max, 1_000_000)) // RLIM_INFINITY is UInt64.max
        return max(1, (descriptors - 200) / 2)
    }

    public init(count: Int, matchedCount: Int, basePort: UInt16, address: UInt32 = 0x7f00_0001) {
        self.count = count
        self.matchedCount = min(matchedCount, count)
        self.basePort = basePort
        self.address = address
    }

    /// Listener ports used: `basePort` (matched) and the unmatched ones after it.
    public static func ports(count: Int, matchedCount: Int, basePort: UInt16) -> ClosedRange<UInt16> {
        let unmatched = count - min(matchedCount, count)
        let unmatchedPorts = (unmatched + connectionsPerPort - 1) / connectionsPerPort
        return basePort...(basePort + UInt16(unmatchedPorts))
    }

    /// Opens everything, prints one JSON line `{"ready":true,...}` on stdout and holds the connections until
    /// SIGTERM/SIGINT; then closes them with RST (SO_LINGER 0), so no TIME_WAIT remains.
    public func run() throws {
        try Self.raiseDescriptorLimit(to: rlim_t(2 * count + 1_000))
        let started = Date()
        let portRange = Self.ports(count: count, matchedCount: matchedCount, basePort: basePort)
        var listeners: [UInt16: Int32] = [:]
        for port in portRange { listeners[port] = try Self.listen(port: port, address: address) }
        var clients: [Int32] = []
        var servers: [Int32] = []
        clients.reserveCapacity(count)
        servers.reserveCapacity(count)
        var pendingByPort: [UInt16: Int] = [:]
        for index in 0..<count {
            let port = index < matchedCount
                ? basePort : basePort + 1 + UInt16((index - matchedCount) / Self.connectionsPerPort)
            clients.append(try Self.connect(port: port, address: address))
            pendingByPort[port, default: 0] += 1
            // Accept before the backlog (4096, somaxconn) fills, or connect() would stall on SYN retries.
            if pendingByPort[port]! >= 1_000 || index == count - 1 {
                for (pendingPort, pending) in pendingByPort {
                    for _ in 0..<pending {
                        let fd = accept(listeners[pendingPort]!, nil, nil)
                        if fd < 0 { throw LabError.invalidArgument("accept on :\(pendingPort): \(ErrnoText.describe(errno))") }
                        servers.append(fd)
                    }
                }
                pendingByPort.removeAll()
            }
        }
        let seconds = Date().timeIntervalSince(started)
        let ready = "{\"ready\":true,\"connections\":\(count),\"matched\":\(matchedCount),\"ports\":\"\(portRange.lowerBound)-\(portRange.upperBound)\",\"setup_seconds\":\(String(format: "%.2f", seconds))}\n"
        // Unbuffered: the benchmark waits for this line on a pipe.
        _ = ready.withCString { write(1, $0, strlen($0)) }

        var stopSignals = sigset_t()
        sigemptyset(&stopSignals)
        sigaddset(&stopSignals, SIGTERM)
        sigaddset(&stopSignals, SIGINT)
        sigprocmask(SIG_BLOCK, &stopSignals, nil)
        var received: Int32 = 0
        sigwait(&stopSignals, &received)
        var reset = linger(l_onoff: 1, l_linger: 0)
        for fd in clients + servers {
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, socklen_t(MemoryLayout<linger>.size))
            close(fd)
        }
        listeners.values.forEach { close($0) }
    }

    static func raiseDescriptorLimit(to wanted: rlim_t) throws {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        guard limit.rlim_cur < wanted else { return }
        limit.rlim_cur = wanted
        if limit.rlim_max < wanted { limit.rlim_max = wanted } // root may raise the hard limit up to fs.nr_open
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) != 0 {
            throw LabError.invalidArgument("cannot raise RLIMIT_NOFILE to \(wanted): \(ErrnoText.describe(errno))")
        }
    }

    static func loopback(port: UInt16, address host: UInt32 = 0x7f00_0001) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = host.bigEndian
        return address
    }

    static func listen(port: UInt16, address host: UInt32 = 0x7f00_0001, backlog: Int32 = 4096) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw LabError.invalidArgument("socket: \(ErrnoText.describe(errno))") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = loopback(port: port, address: host)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, Glibc.listen(fd, backlog) == 0 else {
            let code = errno
            close(fd)
            throw LabError.invalidArgument("listen on \(Self.text(host)):\(port): \(ErrnoText.describe(code))")
        }
        return fd
    }

    static func connect(port: UInt16, address host: UInt32 = 0x7f00_0001) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw LabError.invalidArgument("socket: \(ErrnoText.describe(errno))") }
        var address = loopback(port: port, address: host)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let code = errno
            close(fd)
            throw LabError.invalidArgument("connect to \(Self.text(host)):\(port): \(ErrnoText.describe(code))")
        }
        return fd
    }

    static func text(_ host: UInt32) -> String {
        "\(host >> 24).\((host >> 16) & 0xff).\((host >> 8) & 0xff).\(host & 0xff)"
    }

    /// The local port of a socket.
    static func localPort(_ fd: Int32) -> UInt16 {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return UInt16(bigEndian: address.sin_port)
    }
}
