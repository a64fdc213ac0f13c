import Foundation
import Glibc
import Synchronization

/// A minimal HTTP/1.1 server for `GET /metrics` on one thread: a scrape every few seconds needs no event
/// loop, and this builds in seconds where SwiftNIO would add minutes to a clean build. One request per
/// connection (`Connection: close`); a client gets 2 s to send its request head. Other paths get 404,
/// other methods 405.
public final class MetricsHTTPServer: Sendable {
    /// Where it listens, with the port the kernel chose when asked for port 0.
    public let address: MetricsAddress
    private let listener: Int32
    private let body: @Sendable () -> [UInt8]
    private let running = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)

    /// Binds and listens (the errors say why, e.g. the address in use); `body` makes each response.
    public init(address: MetricsAddress, body: @escaping @Sendable () -> [UInt8]) throws(MetricsServerError) {
        self.body = body
        let family = address.isIPv6 ? AF_INET6 : AF_INET
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw MetricsServerError("socket", address: address) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var storage = sockaddr_storage()
        var length: socklen_t
        if address.isIPv6 {
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = address.port.bigEndian
            inet_pton(AF_INET6, address.host, &sin6.sin6_addr)
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
            withUnsafeBytes(of: sin6) { bytes in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: bytes) } }
        } else {
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = address.port.bigEndian
            inet_pton(AF_INET, address.host, &sin.sin_addr)
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
            withUnsafeBytes(of: sin) { bytes in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: bytes) } }
        }
        let bound = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, length) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            let error = MetricsServerError("bind", address: address)
            close(fd)
            throw error
        }
        // The port actually bound (port 0 asks for any free one).
        var actual = sockaddr_storage()
        var actualLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &actualLength) }
        }
        var resolved = address
        resolved.port = withUnsafeBytes(of: actual) { bytes in
            // sin_port and sin6_port are both at offset 2.
            UInt16(bigEndian: bytes.loadUnaligned(fromByteOffset: 2, as: UInt16.self))
        }
        self.address = resolved
        listener = fd
    }

    deinit {
        stop()
        close(listener)
    }

    /// Serves on a thread of its own until `stop()`.
    public func start() {
        guard !running.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let thread = Thread { [self] in
            serve()
            finished.signal()
        }
        thread.name = "tcpnotify-metrics"
        thread.start()
    }

    /// Stops accepting and waits for the request in progress, if any (at most 0.2 s for the loop to notice).
    public func stop() {
        guard running.exchange(false, ordering: .acquiringAndReleasing) else { return }
        finished.wait()
    }

    private func serve() {
        while running.load(ordering: .acquiring) {
            var fds = [pollfd(fd: listener, events: Int16(POLLIN), revents: 0)]
            let ready = poll(&fds, 1, 200)
            if ready < 0 && errno != EINTR { usleep(100_000) } // should not happen; never spin
            guard ready > 0, fds[0].revents & Int16(POLLIN) != 0, running.load(ordering: .acquiring) else { continue }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            handle(client)
            close(client)
        }
    }

    private func handle(_ client: Int32) {
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var request: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while request.count < 16384 {
            let count = read(client, &chunk, chunk.count)
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            request += chunk[0..<count]
            if Self.headEnds(request) { break }
        }
        let response: [UInt8]
        switch Self.route(request) {
        case .metrics(let head):
            let payload = body()
            response = Self.response(200, "OK", contentType: "text/plain; version=0.0.4; charset=utf-8",
                                     body: payload, includeBody: !head)
        case .status(let code, let reason, let extra):
            response = Self.response(code, reason, contentType: "text/plain; charset=utf-8",
                                     body: Array("\(code) \(reason)\n".utf8), extraHeaders: extra)
        case .none:
            return
        }
        var offset = 0
        while offset < response.count {
            let written = response[offset...].withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written < 0 && errno == EINTR { continue }
            if written <= 0 { return }
            offset += written
        }
    }

    enum Route: Equatable {
        case metrics(head: Bool)
        case status(Int, String, extra: String)
    }

    static func headEnds(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= 4 else { return bytes.count >= 2 && bytes.suffix(2) == [10, 10] }
        return bytes.suffix(4) == [13, 10, 13, 10] || bytes.suffix(2) == [10, 10]
    }

    /// What a request head asks for; nil for nothing at all (the client closed without a request).
    static func route(_ request: [UInt8]) -> Route? {
        guard !request.isEmpty else { return nil }
        let lineEnd = request.firstIndex(of: 10) ?? request.endIndex
        let line = String(decoding: request[..<lineEnd], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let parts = line.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 3, parts[2].hasPrefix("HTTP/1.") else { return .status(400, "Bad Request", extra: "") }
        let path = parts[1].split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        guard path == "/metrics" else { return .status(404, "Not Found", extra: "") }
        switch parts[0] {
        case "GET": return .metrics(head: false)
        case "HEAD": return .metrics(head: true)
        default: return .status(405, "Method Not Allowed", extra: "Allow: GET, HEAD\r\n")
        }
    }

    static func response(_ code: Int, _ reason: String, contentType: String, body: [UInt8], includeBody: Bool = true,
                         extraHeaders: String = "") -> [UInt8] {
        let head = "HTTP/1.1 \(code) \(reason)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n"
            + extraHeaders + "Connection: close\r\n\r\n"
        return Array(head.utf8) + (includeBody ? body : [])
    }
}

/// The `/metrics` server could not listen: which call failed, on which address, and why.
public struct MetricsServerError: Error, CustomStringConvertible, Sendable {
    public let description: String

    init(_ call: String, address: MetricsAddress) {
        let code = errno
        var text = "cannot serve metrics on \(address): \(call): \(String(cString: strerror(code)))"
        if code == EADDRINUSE { text += " (another process listens there; pick another --metrics-address)" }
        if code == EADDRNOTAVAIL { text += " (not an address of this host)" }
        description = text
    }
}
