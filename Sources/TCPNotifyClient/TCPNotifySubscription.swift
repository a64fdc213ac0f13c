import Foundation
import Glibc
import TCPNotifyCore

/// A subscription to a running `tcpnotify serve`: the daemon watches the sockets `filter` selects and
/// sends this subscriber, and only it, a notification each time one of `rules` becomes true.
///
///     let subscription = try await TCPNotifySubscription.connect(filter: "dport = :443", rules: ["rtt > 50ms"])
///     for try await event in subscription {
///         if case .notification(let n) = event.kind { print(n.src, n.rules, n.tcpInfo["rtt"] ?? 0) }
///     }
///
/// Reading is backpressured: when the application does not keep up, the daemon's bounded queue for this
/// subscriber overflows, and a `.dropped` event says how many notifications were lost (the daemon and
/// its other subscribers are never slowed). Iteration ends when the daemon stops (`.end`) or the
/// subscription is cancelled.
public final class TCPNotifySubscription: AsyncSequence, Sendable {
    public typealias Element = SubscriptionEvent

    /// The daemon's number for this subscriber, and the names its rules notify under.
    public let subscriber: Int
    public let ruleNames: [String]
    /// The filter as the daemon understood it (canonical text; empty selects every socket).
    public let filter: String
    /// Existing connections the subscription took over when it started.
    public let existingEnrolled: UInt64
    private let owner: ChannelOwner
    private var channel: LineChannel { owner.channel }

    private init(subscriber: Int, ruleNames: [String], filter: String, existingEnrolled: UInt64, channel: LineChannel) {
        self.subscriber = subscriber
        self.ruleNames = ruleNames
        self.filter = filter
        self.existingEnrolled = existingEnrolled
        self.owner = ChannelOwner(channel)
    }

    /// Connects to the daemon's Unix socket and subscribes. Throws `SubscriptionError.refused` with the
    /// daemon's message for a filter or rule it does not accept.
    public static func connect(
        socketPath: String = SubscriberProtocol.defaultSocketPath, filter: String = "", rules: [String] = [],
        scope: SubscriptionScope = SubscriptionScope(), bufferedLines: Int = 1024
    ) async throws -> TCPNotifySubscription {
        let fd = try connectUnix(path: socketPath)
        let channel = LineChannel(fd: fd, limit: bufferedLines)
        channel.start()
        do {
            try channel.send(SubscriberProtocol.subscribeLine(filter: filter, rules: rules, scope: scope))
            guard let first = try await channel.next() else {
                throw SubscriptionError.disconnected("the daemon closed the connection before answering")
            }
            do {
                switch try Wire.lineType(of: first) {
                case Wire.Subscribed.lineType:
                    let reply = try Wire.decode(Wire.Subscribed.self, from: first)
                    return TCPNotifySubscription(
                        subscriber: reply.subscriber, ruleNames: reply.rules, filter: reply.filter,
                        existingEnrolled: reply.existingEnrolled, channel: channel)
                case Wire.ErrorReply.lineType:
                    throw SubscriptionError.refused(try Wire.decode(Wire.ErrorReply.self, from: first).message)
                default:
                    throw SubscriptionError.protocolViolation("unexpected reply: \(first)")
                }
            } catch let error as Wire.DecodeError {
                throw SubscriptionError.protocolViolation("unreadable reply (\(error)): \(first.prefix(200))")
            }
        } catch {
            channel.cancel()
            throw error
        }
    }

    /// Asks the daemon for this subscriber's counters; the answer arrives as a `.stats` event.
    public func requestStatistics() throws { try channel.send(Wire.line(Wire.StatsRequest())) }

    /// Stops the subscription: the daemon removes this subscriber's selections.
    public func cancel() { channel.cancel() }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let owner: ChannelOwner

        public mutating func next() async throws -> SubscriptionEvent? {
            guard let line = try await owner.channel.next() else { return nil }
            return SubscriptionEvent(line: line)
        }
    }

    /// Iterators keep the subscription alive: it ends when the subscription and its iterators are gone.
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(owner: owner) }

    private static func connectUnix(path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SubscriptionError.connect(path: path, errno: errno) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard path.utf8.count < capacity else {
            close(fd)
            throw SubscriptionError.connect(path: path, errno: ENAMETOOLONG)
        }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in path.utf8.enumerated() { buffer[index] = byte }
        }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard result == 0 else {
            let code = errno
            close(fd)
            throw SubscriptionError.connect(path: path, errno: code)
        }
        return fd
    }
}

public enum SubscriptionError: Error, Sendable, CustomStringConvertible {
    case connect(path: String, errno: Int32)
    /// The daemon refused the request (an invalid filter or rule, a shared limit, no free slot).
    case refused(String)
    case disconnected(String)
    case protocolViolation(String)

    public var description: String {
        switch self {
        case .connect(let path, let code):
            var text = "cannot connect to \(path): \(String(cString: strerror(code)))"
            if code == ENOENT || code == ECONNREFUSED { text += " (is `tcpnotify serve` running? --socket names another path)" }
            if code == EACCES { text += " (the socket is for root and the daemon's group)" }
            return text
        case .refused(let message): return message
        case .disconnected(let message): return message
        case .protocolViolation(let message): return message
        }
    }
}

/// One line from the daemon, decoded with the daemon's own wire types.
public struct SubscriptionEvent: Sendable {
    public enum Kind: Sendable {
        case notification(TCPNotification)
        /// `count` notifications were lost here because this subscriber read too slowly; `total` so far.
        case dropped(count: UInt64, total: UInt64)
        case stats(delivered: UInt64, dropped: UInt64)
        /// The daemon is shutting down (`reason`); no more lines follow.
        case end(reason: String)
        case error(String)
        /// A line of a known type that could not be read (what is wrong with it).
        case malformed(String)
        /// A line of a type this library does not know (a newer daemon).
        case other
    }

    public let kind: Kind
    /// The line exactly as the daemon sent it (for notifications: as `tcpnotify watch --format json` prints them).
    public let line: String

    init(line: String) {
        self.line = line
        do {
            kind = try Self.kind(of: line)
        } catch {
            kind = .malformed(error.message)
        }
    }

    private static func kind(of line: String) throws(Wire.DecodeError) -> Kind {
        switch try Wire.lineType(of: line) {
        case Wire.Notification.lineType:
            return .notification(TCPNotification(try Wire.decode(Wire.Notification.self, from: line)))
        case Wire.Dropped.lineType:
            let dropped = try Wire.decode(Wire.Dropped.self, from: line)
            return .dropped(count: dropped.count, total: dropped.total)
        case Wire.SubscriberStats.lineType:
            let stats = try Wire.decode(Wire.SubscriberStats.self, from: line)
            return .stats(delivered: stats.delivered, dropped: stats.dropped)
        case Wire.End.lineType:
            return .end(reason: try Wire.decode(Wire.End.self, from: line).reason)
        case Wire.ErrorReply.lineType:
            return .error(try Wire.decode(Wire.ErrorReply.self, from: line).message)
        default:
            return .other
        }
    }
}

/// A notification line, decoded: the socket, the event, the rules that notified and its tcp_info.
public struct TCPNotification: Sendable, Equatable {
    /// The line as decoded (every field, including the cgroup attribution and a verdict when present).
    public var wire: Wire.Notification
    /// Wall-clock seconds, and the kernel's CLOCK_MONOTONIC at the event.
    public var timestamp: Double { wire.ts.seconds }
    public var monotonicNanoseconds: UInt64 { wire.tsMonoNs }
    /// rtt, retrans, rto, state, close, sweep, ...
    public var trigger: String { wire.trigger.description }
    /// This subscriber's names of the rules that notify now (empty for a close record).
    public var rules: [String] { wire.rules }
    /// Local and remote ends (`addr:port`, `[v6]:port`).
    public var src: String { wire.src }
    public var dst: String { wire.dst }
    public var family: String { wire.family }
    public var cookie: UInt64 { wire.cookie }
    public var cgroupID: UInt64 { wire.cgroupID }
    /// State and close triggers: the state left.
    public var oldState: String? { wire.oldState }
    public var socketNotifications: UInt64 { wire.socketNotifications }
    /// tcp_info's numeric fields by kernel name (`rtt` in µs, `total_retrans`, ...).
    public var tcpInfo: [String: UInt64] { wire.tcpInfo.numbers }
    /// `tcp_info.state` and `tcp_info.ca_state` as names (ESTABLISHED, Open, ...).
    public var state: String { wire.tcpInfo.name("state") ?? "" }
    public var caState: String { wire.tcpInfo.name("ca_state") ?? "" }

    public init(_ wire: Wire.Notification) { self.wire = wire }
}

/// Cancels the connection once neither the subscription nor an iterator uses it.
final class ChannelOwner: Sendable {
    let channel: LineChannel
    init(_ channel: LineChannel) { self.channel = channel }
    deinit { channel.cancel() }
}

/// The connection's lines, read on a dedicated thread into a small bounded buffer. When the buffer is
/// full the thread stops reading, so the daemon sees a slow reader (and counts drops for it) instead of
/// this process growing without bound.
final class LineChannel: @unchecked Sendable {
    /// A notification line is about 2 KiB; a peer that sends this much without a newline is not a
    /// tcpnotify daemon (or is broken), and buffering it would grow this process without bound.
    static let maximumLineBytes = 1 << 20

    private let fd: Int32
    private let limit: Int
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var lines: [String] = []
    private var head = 0
    private var finished = false
    private var failure: Error?
    private var waiter: CheckedContinuation<String?, Error>?
    private var cancelled = false

    init(fd: Int32, limit: Int) {
        self.fd = fd
        self.limit = max(limit, 1)
    }

    func start() {
        let thread = Thread { [self] in readLoop() }
        thread.name = "tcpnotify-subscription"
        thread.start()
    }

    func send(_ line: String) throws {
        var text = line
        text += "\n"
        try text.withUTF8 { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.send(fd, buffer.baseAddress! + offset, buffer.count - offset, Int32(MSG_NOSIGNAL))
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { throw SubscriptionError.disconnected("cannot send to the daemon: \(String(cString: strerror(errno)))") }
                offset += written
            }
        }
    }

    func cancel() {
        condition.lock()
        let first = !cancelled
        cancelled = true
        condition.broadcast()
        condition.unlock()
        // Wakes the reader thread; it closes the descriptor when it leaves.
        if first { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    func next() async throws -> String? {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<String?, Error>) in
                condition.lock()
                if head < lines.count {
                    let line = lines[head]
                    head += 1
                    if head == lines.count {
                        lines.removeAll(keepingCapacity: true)
                        head = 0
                    }
                    condition.broadcast()
                    condition.unlock()
                    continuation.resume(returning: line)
                } else if finished || cancelled {
                    let failure = cancelled ? nil : self.failure
                    condition.unlock()
                    if let failure { continuation.resume(throwing: failure) } else { continuation.resume(returning: nil) }
                } else {
                    waiter = continuation
                    condition.unlock()
                }
            }
        } onCancel: {
            cancel()
            condition.lock()
            let waiting = waiter
            waiter = nil
            condition.unlock()
            waiting?.resume(returning: nil)
        }
    }

    private func deliver(_ line: String) {
        condition.lock()
        while lines.count - head >= limit && !cancelled { condition.wait() }
        if cancelled {
            condition.unlock()
            return
        }
        if let waiting = waiter {
            waiter = nil
            condition.unlock()
            waiting.resume(returning: line)
            return
        }
        lines.append(line)
        condition.unlock()
    }

    private func finish(_ error: Error?) {
        condition.lock()
        finished = true
        failure = error
        let waiting = waiter
        waiter = nil
        condition.unlock()
        if let waiting {
            if let error { waiting.resume(throwing: error) } else { waiting.resume(returning: nil) }
        }
    }

    private func readLoop() {
        defer { close(fd) }
        var pending: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 {
                condition.lock()
                let wasCancelled = cancelled
                condition.unlock()
                finish(count < 0 && !wasCancelled
                    ? SubscriptionError.disconnected("connection to the daemon failed: \(String(cString: strerror(errno)))") : nil)
                return
            }
            var start = 0
            for index in 0..<count where chunk[index] == UInt8(ascii: "\n") {
                pending.append(contentsOf: chunk[start..<index])
                deliver(String(decoding: pending, as: UTF8.self))
                pending.removeAll(keepingCapacity: true)
                start = index + 1
            }
            pending.append(contentsOf: chunk[start..<count])
            if pending.count > Self.maximumLineBytes {
                finish(SubscriptionError.protocolViolation(
                    "the daemon sent more than \(Self.maximumLineBytes) bytes without a newline: is --socket a tcpnotify serve socket?"))
                return
            }
        }
    }
}
