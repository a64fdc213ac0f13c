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
