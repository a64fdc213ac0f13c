import Foundation
import Glibc
import Logging
import NIOCore
import NIOPosix
import Synchronization
import TCPNotifyCore

/// Splits the byte stream into request lines; a line that grows past the protocol's limit without a
/// newline is refused (the handler replies and closes).
package final class RequestLineDecoder: ByteToMessageDecoder {
    package typealias InboundOut = [UInt8]

    package struct TooLong: Error {}

    package func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
            let length = newline - buffer.readerIndex
            var line = buffer.readBytes(length: length) ?? []
            buffer.moveReaderIndex(forwardBy: 1)
            if line.last == UInt8(ascii: "\r") { line.removeLast() }
            context.fireChannelRead(wrapInboundOut(line))
            return .continue
        }
        if buffer.readableBytes > SubscriberProtocol.maxRequestBytes { throw TooLong() }
        return .needMoreData
    }

    package func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}

/// What one subscriber connection may cost the daemon: a connection slot, a read deadline until it
/// subscribes, and replies it must read (a client that only asks and never reads is closed).
package struct SubscriberLimits: Sendable {
    /// Connections at once, subscribed or not; the next is told so and closed.
    package var maximumConnections = 256
    /// A connection that has not subscribed and sends nothing for this long is closed.
    package var idleTimeout: TimeAmount = .seconds(30)
    /// NIO's write buffer high-water mark: above it the channel is not writable, notifications wait in the
    /// subscriber's own bounded queue, and a control reply closes the connection.
    package static let writeBufferHighBytes = 256 << 10

    package init(maximumConnections: Int = 256, idleTimeout: TimeAmount = .seconds(30)) {
        self.maximumConnections = maximumConnections
        self.idleTimeout = idleTimeout
    }
}

/// One subscriber connection: requests in, replies and (through its `SubscriberSink`) notifications out.
package final class SubscriberConnectionHandler: ChannelInboundHandler {
    package typealias InboundIn = [UInt8]
    package typealias OutboundOut = ByteBuffer

    private let hub: SubscriptionHub
    private let idleTimeout: TimeAmount
    private var sink: SubscriberSink?
    private var subscribing = false
    private var active = true

    package init(hub: SubscriptionHub, idleTimeout: TimeAmount) {
        self.hub = hub
        self.idleTimeout = idleTimeout
    }

    package func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // Subscribers may stay silent (they only read); a connection that never subscribes may not.
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read, sink == nil, !subscribing {
            hub.logger.notice("closing an idle subscriber connection", metadata: ["idle_s": "\(idleTimeout.nanoseconds / 1_000_000_000)"])
            reply(context: context, SubscriberProtocol.errorLine(
                "no request for \(idleTimeout.nanoseconds / 1_000_000_000) s: send a subscribe or stats request; closing"), close: true)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let line = unwrapInboundIn(data)
        if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return } // blank lines are keep-alives
        switch SubscriberProtocol.parse(line) {
        case .failure(let error):
            reply(context: context, SubscriberProtocol.errorLine(error.message), close: error.closesConnection)
        case .success(.stats):
            guard let sink else {
                reply(context: context, SubscriberProtocol.statsLine(subscriber: nil, delivered: 0, dropped: 0, queuedBytes: 0))
                return
            }
            let counters = sink.counters
            reply(context: context, SubscriberProtocol.statsLine(
                subscriber: sink.slot, delivered: counters.delivered, dropped: counters.dropped, queuedBytes: counters.queuedBytes))
        case .success(.connections(let query)):
            guard let history = hub.history else {
                reply(context: context, SubscriberProtocol.errorLine("this daemon keeps no connection history: start serve with --history"))
                return
            }
            switch history.answer(query) {
            case .found(let line): reply(context: context, line)
            case .unknown(let message): reply(context: context, SubscriberProtocol.errorLine(message))
            }
        case .success(.subscribe(let filter, let rules, let scope)):
            guard sink == nil, !subscribing else {
                reply(context: context, SubscriberProtocol.errorLine("already subscribed: one subscription per connection"))
                return
            }
            subscribing = true
            let channel = context.channel
            let hub = self.hub
            let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
            context.eventLoop.makeFutureWithTask {
                await hub.subscribe(filter: filter, rules: rules, scope: scope, channel: channel)
            }.whenComplete { result in
                let handler = loopBound.value
                handler.subscribing = false
                switch result {
                case .success(.success(let joined)):
                    guard handler.active else {
                        Task { await hub.unsubscribe(joined.sink) } // left while joining
                        return
                    }
                    handler.sink = joined.sink
                    hub.logger.info("subscriber joined", metadata: [
                        "subscriber": "\(joined.sink.slot)", "filter": "\(joined.filter)", "rules": "\(joined.ruleNames)",
                        "existing_enrolled": "\(joined.existingEnrolled)",
                    ])
                    joined.sink.start(first: SubscriberProtocol.subscribedLine(
                        subscriber: joined.sink.slot, filter: joined.filter, rules: joined.ruleNames,
                        existingEnrolled: joined.existingEnrolled))
                case .success(.failure(let error)):
                    handler.write(channel: channel, SubscriberProtocol.errorLine(error.message), close: false)
                case .failure(let error):
                    handler.write(channel: channel, SubscriberProtocol.errorLine("\(error)"), close: false)
                }
            }
        }
    }

    package func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { sink?.drain() }
        context.fireChannelWritabilityChanged()
    }

    package func channelInactive(context: ChannelHandlerContext) {
        active = false
        if let sink {
            self.sink = nil
            let hub = self.hub
            Task { await hub.unsubscribe(sink) }
        }
        context.fireChannelInactive()
    }

    package func errorCaught(context: ChannelHandlerContext, error: Error) {
        if error is RequestLineDecoder.TooLong {
            reply(context: context, SubscriberProtocol.errorLine(
                "request longer than \(SubscriberProtocol.maxRequestBytes) bytes"), close: true)
        } else {
            context.close(promise: nil)
        }
    }

    private func reply(context: ChannelHandlerContext, _ line: String, close: Bool = false) {
        write(channel: context.channel, line, close: close)
    }

    private func write(channel: Channel, _ line: String, close: Bool) {
        // Replies queue in NIO's write buffer: a client that keeps asking and never reads would grow it
        // without bound. Past the high-water mark it is closed instead.
        guard channel.isWritable else {
            hub.logger.notice("closing a subscriber that does not read its replies", metadata: [
                "unread_bytes_over": "\(SubscriberLimits.writeBufferHighBytes)",
            ])
            channel.close(promise: nil)
            return
        }
        var buffer = channel.allocator.buffer(capacity: line.utf8.count + 1)
        buffer.writeString(line)
        buffer.writeInteger(UInt8(ascii: "\n"))
        let written = channel.writeAndFlush(buffer)
        if close { written.whenComplete { _ in channel.close(promise: nil) } }
    }
}

/// A connection over the limit: told why once it is active, then closed.
package final class RefusingHandler: ChannelInboundHandler {
    package typealias InboundIn = ByteBuffer
    private let line: String

    package init(line: String) { self.line = line }

    package func channelActive(context: ChannelHandlerContext) {
        let channel = context.channel
        var buffer = channel.allocator.buffer(capacity: line.utf8.count + 1)
        buffer.writeString(line + "\n")
        channel.writeAndFlush(buffer).whenComplete { _ in channel.close(promise: nil) }
    }
}

/// Subscriber connections open now, against `SubscriberLimits.maximumConnections`.
package final class ConnectionCount: Sendable {
    private let open = Mutex(0)

    /// Takes a slot and returns the count with it, or nil when all `maximum` are taken.
    package func claim(below maximum: Int) -> Int? {
        open.withLock { count in
            guard count < maximum else { return nil }
            count += 1
            return count
        }
    }

    package func release() { open.withLock { $0 -= 1 } }
}

/// The Unix socket subscribers connect to.
package enum SubscriberSocket {
    package struct Failure: Error, CustomStringConvertible {
        package let description: String
    }

    /// Binds `path` readable and writable by root and `group` only (mode 0660; 0600 without a group).
    /// Refuses to take over a socket another daemon still answers on.
    package static func bind(path: String, group: gid_t?, hub: SubscriptionHub, limits: SubscriberLimits,
                     eventLoops: EventLoopGroup, logger: Logger) async throws -> Channel {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty && !FileManager.default.fileExists(atPath: directory) {
            guard mkdir(directory, 0o755) == 0 || errno == EEXIST else {
                throw Failure(description: "cannot create \(directory): \(String(cString: strerror(errno)))")
            }
        }
        if FileManager.default.fileExists(atPath: path) {
            if isAnswering(path) { throw Failure(description: "another process is listening on \(path)") }
        }
        let connections = ConnectionCount()
        let bootstrap = ServerBootstrap(group: eventLoops)
            .serverChannelOption(.backlog, value: 64)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 32 << 10, high: SubscriberLimits.writeBufferHighBytes))
            .childChannelInitializer { channel in
                guard connections.claim(below: limits.maximumConnections) != nil else {
                    logger.notice("subscriber connection refused", metadata: ["maximum": "\(limits.maximumConnections)"])
                    return channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(RefusingHandler(line: SubscriberProtocol.errorLine(
                            "too many connections (\(limits.maximumConnections), serve --max-clients); try again later")))
                    }
                }
                channel.closeFuture.whenComplete { _ in connections.release() }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: limits.idleTimeout))
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RequestLineDecoder()))
                    try channel.pipeline.syncOperations.addHandler(SubscriberConnectionHandler(hub: hub, idleTimeout: limits.idleTimeout))
                }
            }
        // The socket must never be reachable by others, not even between bind and chmod: bind under a
        // umask that leaves only the owner (nothing else in the process creates files meanwhile).
        let previous = umask(0o177)
        let channel: Channel
        do {
            channel = try await bootstrap.bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).get()
        } catch {
            umask(previous)
            throw Failure(description: "cannot listen on \(path): \(error)")
        }
        umask(previous)
        if let group {
            guard chown(path, uid_t.max, group) == 0, chmod(path, 0o660) == 0 else { // the owner stays (root, or the unit's user)
                let message = String(cString: strerror(errno))
                try? await channel.close()
                throw Failure(description: "cannot give \(path) to group \(group): \(message)")
            }
        }
        return channel
    }

    /// Whether a process accepts connections on the Unix socket at `path` (a live daemon, not a stale file).
    package static func isAnswering(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in path.utf8.prefix(buffer.count - 1).enumerated() { buffer[index] = byte }
        }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        } == 0
    }
}
