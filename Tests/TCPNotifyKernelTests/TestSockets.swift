import Foundation
import Glibc
import Synchronization
import TCPNotifyBPF
import TCPNotifyCore

/// Real TCP sockets for kernel tests: listeners, connected pairs, bulk writes, and the kernel's own
/// `getsockopt(TCP_INFO)` answer to compare records with.
struct SocketError: Error, CustomStringConvertible {
    let description: String
    init(_ what: String, _ code: Int32 = errno) {
        description = "\(what): \(String(cString: strerror(code))) (errno \(code))"
    }
}

enum Family {
    case ipv4, ipv6

    var domain: Int32 { self == .ipv4 ? AF_INET : AF_INET6 }
}

/// A socket address (IPv4 or IPv6) as bytes ready for bind/connect.
struct SocketAddress {
    var storage = sockaddr_storage()
    var length: socklen_t = 0

    init(_ host: String, port: UInt16) throws {
        if host.contains(":") {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = port.bigEndian
            guard inet_pton(AF_INET6, host, &address.sin6_addr) == 1 else { throw SocketError("bad IPv6 \(host)", EINVAL) }
            withUnsafeBytes(of: address) { bytes in
                withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: bytes) }
            }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { throw SocketError("bad IPv4 \(host)", EINVAL) }
            withUnsafeBytes(of: address) { bytes in
                withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: bytes) }
            }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
        }
    }

    var port: UInt16 {
        withUnsafeBytes(of: storage) { bytes in
            UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
        }
    }
}

final class TCPSocket {
    let fd: Int32
    private let owned: Bool

    init(fd: Int32) {
        self.fd = fd
        owned = true
    }

    /// A view of a descriptor owned elsewhere (not closed by this object), for another thread.
    static func borrowing(_ fd: Int32) -> TCPSocket { TCPSocket(fd: fd, owned: false) }

    private init(fd: Int32, owned: Bool) {
        self.fd = fd
        self.owned = owned
    }

    init(domain: Int32) throws {
        let fd = socket(domain, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError("socket") }
        self.fd = fd
        owned = true
    }

    deinit { if owned { close(fd) } }

    func setOption(_ level: Int32, _ name: Int32, _ value: Int32) throws {
        var value = value
        guard setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            throw SocketError("setsockopt(\(name))")
        }
    }

    func bind(_ address: SocketAddress) throws {
        var address = address
        let result = withUnsafePointer(to: &address.storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, address.length) }
        }
        guard result == 0 else { throw SocketError("bind") }
    }

    func connect(_ address: SocketAddress) throws {
        var address = address
        let result = withUnsafePointer(to: &address.storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, address.length) }
        }
        guard result == 0 else { throw SocketError("connect") }
    }

    func localPort() throws -> UInt16 {
        var address = SocketAddress.empty
        let result = withUnsafeMutablePointer(to: &address.storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &address.length) }
        }
        guard result == 0 else { throw SocketError("getsockname") }
        return address.port
    }

    /// Writes all of `count` bytes (blocking).
    func send(count: Int) throws {
        let chunk = [UInt8](repeating: 0x5a, count: min(count, 1 << 16))
        var left = count
        while left > 0 {
            let written = chunk.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, min(left, $0.count), Int32(MSG_NOSIGNAL)) }
            if written < 0 && errno == EINTR { continue }
            guard written > 0 else { throw SocketError("send") }
            left -= written
        }
    }

    /// Writes without blocking until the socket refuses more; returns the bytes written.
    func fillWithoutBlocking() -> Int {
        let chunk = [UInt8](repeating: 0x5a, count: 1 << 16)
        var total = 0
        while true {
            let written = chunk.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
            }
            if written <= 0 { return total }
            total += written
        }
    }

    /// Reads exactly `count` bytes (blocking).
    func receive(count: Int) throws { try TCPSocket.receive(fd: fd, count: count) }

    func shutdownWrite() throws {
        guard Glibc.shutdown(fd, Int32(SHUT_WR)) == 0 else { throw SocketError("shutdown") }
    }

    func tcpInfo() throws -> TCPInfo { try SocketInfo.tcpInfo(fd: fd) }

    func cookie() throws -> UInt64 { try SocketInfo.cookie(fd: fd) }
}

extension SocketAddress {
    static var empty: SocketAddress {
        var address = try! SocketAddress("0.0.0.0", port: 0)
        address.length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        return address
    }
}

/// A connected client/server pair on loopback (or across the lab, for sockets made in a namespace).
struct ConnectedPair {
    let client: TCPSocket
    let server: TCPSocket
    let listener: TCPSocket

    static func make(
        family: Family = .ipv4, serverHost: String? = nil, clientHost: String? = nil, serverPort: UInt16 = 0,
        clientPort: UInt16 = 0, configureClient: (TCPSocket) throws -> Void = { _ in },
        configureServer: (TCPSocket) throws -> Void = { _ in }
    ) throws -> ConnectedPair {
        let host = serverHost ?? (family == .ipv4 ? "127.0.0.1" : "::1")
        let listener = try TCPSocket(domain: family.domain)
        try listener.setOption(SOL_SOCKET, SO_REUSEADDR, 1)
        try configureServer(listener) // buffer sizes are inherited by the accepted socket
        try listener.bind(SocketAddress(host, port: serverPort))
        guard listen(listener.fd, 128) == 0 else { throw SocketError("listen") }
        let port = try listener.localPort()
        let client = try TCPSocket(domain: family.domain)
        try configureClient(client)
        if let clientHost {
            try client.setOption(SOL_SOCKET, SO_REUSEADDR, 1)
            try client.bind(SocketAddress(clientHost, port: clientPort))
        }
        try client.connect(SocketAddress(host, port: port))
        let accepted = accept(listener.fd, nil, nil)
        guard accepted >= 0 else { throw SocketError("accept") }
        return ConnectedPair(client: client, server: TCPSocket(fd: accepted), listener: listener)
    }
}

/// Waits until `condition` holds or the timeout passes; returns whether it held.
func eventually(timeout seconds: Double = 5, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try condition() { return true }
        usleep(2000)
    }
    return try condition()
}

/// Sends `count` bytes from one socket while another thread reads them on the other: neither side
/// blocks the other, whatever the buffer sizes.
func transfer(_ count: Int, from sender: TCPSocket, to receiver: TCPSocket) throws {
    let receiverFD = receiver.fd
    let done = DispatchSemaphore(value: 0)
    let failure = Mutex<String?>(nil)
    let thread = Thread {
        do {
            try TCPSocket.receive(fd: receiverFD, count: count)
        } catch {
            failure.withLock { $0 = "\(error)" }
        }
        done.signal()
    }
    thread.start()
    try sender.send(count: count)
    done.wait()
    if let message = failure.withLock({ $0 }) { throw SocketError(message, 0) }
}

extension TCPSocket {
    static func receive(fd: Int32, count: Int) throws {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var left = count
        while left > 0 {
            let read = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, min(left, $0.count), 0) }
            if read < 0 && errno == EINTR { continue }
            guard read > 0 else { throw SocketError("recv (got \(count - left) of \(count))") }
            left -= read
        }
    }
}

extension TCPSocket {
    /// A listener on 127.0.0.1 and a free port.
    static func listener() throws -> TCPSocket {
        let listener = try TCPSocket(domain: AF_INET)
        try listener.setOption(SOL_SOCKET, SO_REUSEADDR, 1)
        try listener.bind(SocketAddress("127.0.0.1", port: 0))
        guard listen(listener.fd, 128) == 0 else { throw SocketError("listen") }
        return listener
    }
}

extension ConnectedPair {
    /// A new connection to a loopback listener, made now (so in this process's cgroup now).
    static func connect(to listener: TCPSocket) throws -> ConnectedPair {
        let client = try TCPSocket(domain: AF_INET)
        try client.connect(SocketAddress("127.0.0.1", port: try listener.localPort()))
        let accepted = accept(listener.fd, nil, nil)
        guard accepted >= 0 else { throw SocketError("accept") }
        return ConnectedPair(client: client, server: TCPSocket(fd: accepted), listener: listener)
    }
}
