import Glibc
import TCPNotifyBPF
import TCPNotifyCore

/// A TCP socket for the lab's traffic programs: connect or listen, socket options, timed reads and writes,
/// and the kernel's own `getsockopt(TCP_INFO)` view of it.
public final class LabSocket: @unchecked Sendable {
    public let fd: Int32
    private var isClosed = false
    /// POLLRDHUP (a _GNU_SOURCE name Swift does not import): the peer shut down its sending side.
    static let peerClosedEvent: Int16 = 0x2000

    init(fd: Int32) { self.fd = fd }

    init(family: Int32) throws {
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw LabSocket.failure("socket") }
        self.fd = fd
    }

    deinit { close() }

    /// Closes the socket (deinit does it too). Stop anything that polls it first.
    public func close() {
        guard !isClosed else { return }
        isClosed = true
        Glibc.close(fd)
    }

    /// Connects to `address`, from `localPort` if given; `configure` runs before connect (buffer sizes and
    /// the congestion control must be set before the handshake to take full effect).
    public static func connect(
        to address: LabSocketAddress, localPort: UInt16? = nil, configure: (LabSocket) throws -> Void = { _ in }
    ) throws -> LabSocket {
        let socket = try LabSocket(family: address.family)
        try configure(socket)
        if let localPort {
            try socket.setOption(SOL_SOCKET, SO_REUSEADDR, 1)
            let wildcard = try LabSocketAddress(host: address.family == AF_INET6 ? "::" : "0.0.0.0", port: localPort)
            guard wildcard.withSockaddr({ bind(socket.fd, $0, $1) }) == 0 else { throw failure("bind to port \(localPort)") }
        }
        guard address.withSockaddr({ Glibc.connect(socket.fd, $0, $1) }) == 0 else { throw failure("connect to \(address)") }
        return socket
    }

    /// Listens on `[::]:port`, which takes IPv4 clients too; `configure` runs before listen, so accepted
    /// sockets inherit its buffer sizes.
    public static func listen(port: UInt16, configure: (LabSocket) throws -> Void = { _ in }) throws -> LabSocket {
        let socket = try LabSocket(family: AF_INET6)
        try socket.setOption(SOL_SOCKET, SO_REUSEADDR, 1)
        try socket.setOption(Int32(IPPROTO_IPV6), IPV6_V6ONLY, 0)
        try configure(socket)
        let any = try LabSocketAddress(host: "::", port: port)
        guard any.withSockaddr({ bind(socket.fd, $0, $1) }) == 0 else { throw failure("bind to [::]:\(port)") }
        guard Glibc.listen(socket.fd, 16) == 0 else { throw failure("listen") }
        return socket
    }

    /// Accepts one connection, or throws after `timeoutSeconds`.
    public func accept(timeoutSeconds: Double) throws -> LabSocket {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let ready = poll(&poller, 1, Int32(timeoutSeconds * 1000))
        guard ready > 0 else { throw LabError.timedOut(what: "a connection", seconds: timeoutSeconds) }
        let accepted = Glibc.accept(fd, nil, nil)
        guard accepted >= 0 else { throw LabSocket.failure("accept") }
        _ = fcntl(accepted, F_SETFD, FD_CLOEXEC)
        return LabSocket(fd: accepted)
    }

    public func setOption(_ level: Int32, _ name: Int32, _ value: Int32) throws {
        var value = value
        guard setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            throw LabSocket.failure("setsockopt(\(level), \(name), \(value))")
        }
    }

    /// TCP_CONGESTION: `cubic`, `reno`, `bbr`...
    public func setCongestionControl(_ name: String) throws {
        let result = name.withCString { setsockopt(fd, Int32(IPPROTO_TCP), TCP_CONGESTION, $0, socklen_t(strlen($0))) }
        guard result == 0 else { throw LabSocket.failure("setting congestion control '\(name)'") }
    }

    /// Blocking sends and receives return after at most `seconds` (with EAGAIN), so loops can watch the clock.
    public func setTimeouts(seconds: Double) throws {
        var timeout = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - seconds.rounded(.down)) * 1e6))
        for option in [SO_SNDTIMEO, SO_RCVTIMEO] {
            guard setsockopt(fd, SOL_SOCKET, option, &timeout, socklen_t(MemoryLayout<timeval>.size)) == 0 else {
                throw LabSocket.failure("setsockopt(SO_SNDTIMEO/SO_RCVTIMEO)")
            }
        }
    }

    /// Sends up to `count` bytes of `buffer`; returns how many were taken (0 when the timeout passed first).
    public func send(_ buffer: UnsafeRawBufferPointer, count: Int) throws -> Int {
        let written = Glibc.send(fd, buffer.baseAddress, min(count, buffer.count), Int32(MSG_NOSIGNAL))
        if written >= 0 { return written }
        if errno == EAGAIN || errno == EINTR { return 0 }
        throw LabSocket.failure("send")
    }

    /// Reads up to `count` bytes; returns nil at end of stream (or a reset), 0 when the timeout passed first.
    public func receive(_ buffer: UnsafeMutableRawBufferPointer, count: Int) throws -> Int? {
        let read = recv(fd, buffer.baseAddress, min(count, buffer.count), 0)
        if read > 0 { return read }
        if read == 0 { return nil }
        if errno == EAGAIN || errno == EINTR { return 0 }
        if errno == ECONNRESET { return nil }
        throw LabSocket.failure("recv")
    }

    public func tcpInfo() throws -> TCPInfo {
        do {
            return try SocketInfo.tcpInfo(fd: fd)
        } catch {
            throw LabError.bpf(error)
        }
    }

    public func cookie() throws -> UInt64 {
        do {
            return try SocketInfo.cookie(fd: fd)
        } catch {
            throw LabError.bpf(error)
        }
    }

    public func localEndpoint() -> Endpoint? { endpoint(getsockname) }
    public func remoteEndpoint() -> Endpoint? { endpoint(getpeername) }

    /// Closes with a reset (SO_LINGER 0): queued data is dropped instead of trickling out after the
    /// program has gone, so a flow ends when its program says so.
    public func abort() {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close()
    }

    public func shutdownWrite() { _ = Glibc.shutdown(fd, Int32(SHUT_WR)) }

    private func endpoint(_ query: (Int32, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32) -> Endpoint? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { query(fd, $0, &length) }
        }
        return result == 0 ? LabSocketAddress.endpoint(of: storage) : nil
    }

    static func failure(_ what: String) -> LabError {
        .invalidArgument("\(what): \(ErrnoText.describe(errno))")
    }
}
