import Foundation
import Glibc
import Synchronization
import TCPNotifyLab
import TCPNotifyCore

/// A `tcpnotify serve` subprocess on a private socket, attached to the test's cgroup.
final class ServeProcess {
    let process: CLIProcess
    let directory: String
    let socketPath: String

    init(cgroup: TestCgroup, extra: [String] = [], environment: [String: String] = [:]) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("tcpnotify-serve-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        socketPath = directory + "/tcpnotify.sock"
        process = try CLIProcess(
            KernelSuite.CLI.tcpnotify(),
            ["serve", "--cgroup", cgroup.path, "--socket", socketPath, "--socket-group", "0", "--log-level", "info",
             "--metrics-address", "127.0.0.1:0"] + extra, environment: environment)
        guard eventually(timeout: commandStartSeconds, { process.standardError.contains("serving on") }) else {
            let errors = process.standardError
            _ = process.waitForExit(timeout: 1)
            throw SocketError("tcpnotify serve did not start: \(errors)", 0)
        }
    }

    deinit {
        if process.process.isRunning {
            process.signal(SIGTERM)
            _ = process.waitForExit(timeout: 5)
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    var isRunning: Bool { process.process.isRunning }

    /// A resident set size in KiB, from /proc.
    var residentKilobytes: Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(process.process.processIdentifier)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return nil }
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
    }
}

/// A subscriber speaking the protocol over a raw Unix socket, its lines collected by a thread. It can
/// start paused (reading nothing) to play a slow subscriber.
final class RawSubscriber: @unchecked Sendable {
    let fd: Int32
    private let lines = Mutex<[String]>([])
    private let closed = Atomic<Bool>(false)
    private let reading = Atomic<Bool>(false)

    init(socketPath: String, receiveBufferBytes: Int32? = nil, paused: Bool = false) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError("socket(AF_UNIX)") }
        if var size = receiveBufferBytes {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in socketPath.utf8.enumerated() { buffer[index] = byte }
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard result == 0 else {
            close(fd)
            throw SocketError("connect(\(socketPath))")
        }
        if !paused { startReading() }
    }

    deinit { close(fd) }

    func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard sent > 0 else { throw SocketError("send to the daemon") }
            offset += sent
        }
    }

    /// Reads one line now, on this thread (for the handshake of a paused subscriber).
    func readLineBlocking(timeout: Double = 10) -> String? {
        var line: [UInt8] = []
        let deadline = Date().addingTimeInterval(timeout)
        var byte: UInt8 = 0
        while Date() < deadline {
            var pollfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pollfd, 1, 100) > 0 else { continue }
            guard recv(fd, &byte, 1, 0) == 1 else { return nil }
            if byte == UInt8(ascii: "\n") { return String(decoding: line, as: UTF8.self) }
            line.append(byte)
        }
        return nil
    }

    func startReading() {
        guard !reading.exchange(true, ordering: .relaxed) else { return }
        let thread = Thread { [self] in
            var pending: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 64 << 10)
            while true {
                let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { break }
                var start = 0
                var complete: [String] = []
                for index in 0..<count where chunk[index] == UInt8(ascii: "\n") {
                    pending.append(contentsOf: chunk[start..<index])
                    complete.append(String(decoding: pending, as: UTF8.self))
                    pending.removeAll(keepingCapacity: true)
                    start = index + 1
                }
                pending.append(contentsOf: chunk[start..<count])
                if !complete.isEmpty { lines.withLock { $0 += complete } }
            }
            closed.store(true, ordering: .relaxed)
        }
        thread.start()
    }

    var allLines: [String] { lines.withLock { $0 } }
    /// The daemon closed the connection (seen by the reading thread).
    var isClosed: Bool { closed.load(ordering: .relaxed) }

    private let wireCache = WireLineCache(subscriber: true)
    /// The daemon's lines, decoded with the product's wire types (lines that do not read back are test failures).
    var wireLines: [WireOutputLine] { wireCache.lines(of: allLines) }
    var notifications: [Wire.Notification] { wireLines.compactMap(\.notification) }
    var errorMessages: [String] { wireLines.compactMap(\.error?.message) }

    var dropped: [Wire.Dropped] { wireLines.compactMap(\.dropped) }
    var ends: Int { wireLines.count { if case .end = $0 { true } else { false } } }

    /// Subscribes and waits for the reply: `subscribed`, or an `error` (thrown as `SubscribeRefused`).
    @discardableResult
    func subscribe(filter: String, rules: [String], scope: SubscriptionScope = SubscriptionScope(),
                   timeout: Double = 15) throws -> Wire.Subscribed {
        func replies() -> [WireOutputLine] {
            wireLines.filter { if case .subscribed = $0 { true } else { $0.error != nil } }
        }
        let earlier = replies().count
        try send(Wire.line(Wire.Subscribe(filter: filter, rules: rules, scope: scope)) + "\n")
        var reply: WireOutputLine?
        _ = eventually(timeout: timeout) {
            reply = replies().dropFirst(earlier).first
            return reply != nil
        }
        switch reply {
        case .subscribed(let subscribed)?: return subscribed
        case .error(let error)?: throw SubscribeRefused(message: error.message)
        default: throw SocketError("no reply to subscribe: \(allLines)", 0)
        }
    }
}

/// The daemon answered a subscribe request with an error.
struct SubscribeRefused: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// One listener on loopback and clients connected to it, all in this process's cgroup.
final class LoopbackServer {
    let listener: TCPSocket
    let port: UInt16

    init() throws {
        listener = try TCPSocket(domain: AF_INET)
        try listener.setOption(SOL_SOCKET, SO_REUSEADDR, 1)
        try listener.bind(SocketAddress("127.0.0.1", port: 0))
        guard listen(listener.fd, 512) == 0 else { throw SocketError("listen") }
        port = try listener.localPort()
    }

    func connect() throws -> ConnectedPair {
        let client = try TCPSocket(domain: AF_INET)
        try client.connect(SocketAddress("127.0.0.1", port: port))
        let accepted = accept(listener.fd, nil, nil)
        guard accepted >= 0 else { throw SocketError("accept") }
        return ConnectedPair(client: client, server: TCPSocket(fd: accepted), listener: listener)
    }
}
