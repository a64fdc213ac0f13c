import Glibc
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import Synchronization

/// The HTTP/1.1 server of `GET /metrics` (and `HEAD`), and of the paths `routes` answers: other paths get 404, other methods 405, malformed
/// requests 400. SwiftNIO on one event-loop thread serves many clients at once; `body` (which may read
/// kernel maps or wait for a lock) runs on a thread of its own, so a slow body delays scrapes, never the
/// event loop, and the deadlines below still fire.
///
/// One request per connection (`Connection: close`), as before: Prometheus scrapes every few seconds,
/// and a fresh loopback connection per scrape costs less than an idle timeout to tune and a second
/// deadline to reason about; a connection's slot is free the moment its response is written.
///
/// A slow or idle client costs one connection slot, never the scrape: the request head must arrive
/// within `Limits.headTimeout` and the whole exchange (response written) within `Limits.requestTimeout`
/// (else 408 and close); a head over `Limits.maxHeadBytes` gets 431, a body over `Limits.maxBodyBytes`
/// 413; beyond `Limits.maxConnections` open connections a new one is closed at once. Each is counted
/// (`counters`, and in `registry` when given). `stop()` closes every connection at once.
public final class MetricsHTTPServer: Sendable {
    /// What one client may cost.
    public struct Limits: Sendable, Equatable {
        /// From accept to the end of the request head (the blank line).
        public var headTimeout: Duration
        /// From accept to the last byte of the response handed to the kernel.
        public var requestTimeout: Duration
        /// The request line and headers, with their line ends.
        public var maxHeadBytes: Int
        /// A request body (`GET` needs none; it is read and ignored).
        public var maxBodyBytes: Int
        /// Connections open at once; more are closed as they are accepted.
        public var maxConnections: Int

        public init(headTimeout: Duration = .seconds(5), requestTimeout: Duration = .seconds(10),
                    maxHeadBytes: Int = 16 * 1024, maxBodyBytes: Int = 16 * 1024, maxConnections: Int = 64) {
            self.headTimeout = headTimeout
            self.requestTimeout = requestTimeout
            self.maxHeadBytes = maxHeadBytes
            self.maxBodyBytes = maxBodyBytes
            self.maxConnections = maxConnections
        }
    }

    /// Totals since the server was made.
    public struct Counters: Sendable, Equatable {
        /// Connections taken on (refused ones excluded).
        public var accepted = 0
        /// Connections closed as accepted: `maxConnections` were open, each with a complete request.
        public var refused = 0
        /// Connections closed to make room for a new one: `maxConnections` were open, and this was the
        /// oldest still sending its request head (a slow client must not hold the scrape's slot).
        public var evicted = 0
        /// Closed with 408: no complete head within `headTimeout`.
        public var headTimeouts = 0
        /// Closed (with 408 if no response had started): not done within `requestTimeout`.
        public var requestTimeouts = 0
        /// 431: the head grew past `maxHeadBytes`.
        public var headTooLarge = 0
        /// 413: the body grew past `maxBodyBytes`.
        public var bodyTooLarge = 0
        /// 400: not a well-formed HTTP/1.x request.
        public var malformed = 0
        /// 200 responses (`GET` or `HEAD /metrics`).
        public var scrapes = 0
        /// Connections open now.
        public var open = 0
    }

    /// Where it listens, with the port the kernel chose when asked for port 0.
    public let address: MetricsAddress
    public let limits: Limits
    private let state: MetricsServerState
    private let group: MultiThreadedEventLoopGroup
    private let bodyThread: NIOThreadPool
    private let listener: any Channel
    private let phase = Mutex(Phase.bound)

    private enum Phase { case bound, serving, stopped }

    /// Binds and listens (the errors say why, e.g. the address in use); `body` makes each response.
    /// Connections wait in the listen backlog until `start()`. With `registry`, the refusals, timeouts
    /// and rejections are also `tcpnotify_metrics_http_*` counters there.
    /// `routes` answers `GET` (and `HEAD`) of other paths (nil: 404), on the same thread as `body` and
    /// under the same deadlines and caps.
    public init(address: MetricsAddress, limits: Limits = Limits(), registry: PrometheusCollectorRegistry? = nil,
                routes: @escaping Routes = { _ in nil },
                body: @escaping @Sendable () -> [UInt8]) throws(MetricsServerError) {
        let state = MetricsServerState(limits: limits, registry: registry)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let bodyThread = NIOThreadPool(numberOfThreads: 1)
        bodyThread.start()
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.autoRead, value: false) // accept from start() on
            // A client may send its request and shut down its side: the response still goes out.
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelInitializer { channel in
                guard state.admit(channel) else {
                    // The accept handler closes it; the error stops at the listener's pipeline end.
                    return channel.eventLoop.makeFailedFuture(MetricsServerState.Refused())
                }
                do {
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandler(MetricsConnectionGuard(limits: limits, state: state))
                    try pipeline.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: true)
                    try pipeline.addHandler(MetricsRequestHandler(state: state, bodyThread: bodyThread, routes: routes, body: body))
                    return channel.eventLoop.makeSucceededFuture(())
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
        let listener: any Channel
        do {
            let socketAddress = try SocketAddress(ipAddress: address.host, port: Int(address.port))
            listener = try bootstrap.bind(to: socketAddress).wait()
        } catch {
            try? bodyThread.syncShutdownGracefully()
            try? group.syncShutdownGracefully()
            let code = (error as? IOError)?.errnoCode ?? EINVAL
            throw MetricsServerError("bind", address: address, code: code)
        }
        var resolved = address
        if let port = listener.localAddress?.port { resolved.port = UInt16(port) }
        self.address = resolved
        self.limits = limits
        self.state = state
        self.group = group
        self.bodyThread = bodyThread
        self.listener = listener
    }

    deinit {
        stop()
    }

    /// What the server has done so far (and how many connections are open).
    public var counters: Counters { state.snapshot() }

    /// Starts accepting connections (on the server's own event-loop thread).
    public func start() {
        let start = phase.withLock { phase -> Bool in
            guard phase == .bound else { return false }
            phase = .serving
            return true
        }
        if start { try? listener.setOption(.autoRead, value: true).wait() }
    }

    /// Stops for good: closes the listener and every connection at once (a response not yet written is
    /// lost), waits for a `body` call in progress, and ends the server's threads. Safe to call twice.
    /// Not from within `body`.
    public func stop() {
        let stop = phase.withLock { phase -> Bool in
            guard phase != .stopped else { return false }
            phase = .stopped
            return true
        }
        guard stop else { return }
        try? listener.close().wait()
        let open = state.openChannels()
        for channel in open { channel.close(promise: nil) }
        if let loop = open.first?.eventLoop {
            try? EventLoopFuture.andAllComplete(open.map(\.closeFuture), on: loop).wait()
        }
        try? bodyThread.syncShutdownGracefully()
        try? group.syncShutdownGracefully()
    }

    /// What a request asks for: the metrics (`HEAD`: without the body), or an error status.
    enum Route: Equatable {
        case metrics(head: Bool)
        /// Another path, for `routes`.
        case other(path: String, head: Bool)
        case status(HTTPResponseStatus)
    }

    /// A response to a path other than /metrics.
    public struct Reply: Sendable, Equatable {
        public var status: Int
        public var contentType: String
        public var body: [UInt8]

        public init(status: Int, contentType: String = "application/json", body: [UInt8]) {
            self.status = status
            self.contentType = contentType
            self.body = body
        }
    }

    /// Answers for paths other than /metrics (the path without its query string); nil: 404.
    public typealias Routes = @Sendable (_ path: String) -> Reply?

    static func route(method: HTTPMethod, uri: String, version: HTTPVersion) -> Route {
        guard version.major == 1 else { return .status(.badRequest) }
        let path = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        guard path == "/metrics" else {
            switch method {
            case .GET: return .other(path: String(path), head: false)
            case .HEAD: return .other(path: String(path), head: true)
            default: return .status(.notFound)
            }
        }
        switch method {
        case .GET: return .metrics(head: false)
        case .HEAD: return .metrics(head: true)
        default: return .status(.methodNotAllowed)
        }
    }

    static let metricsContentType = "text/plain; version=0.0.4; charset=utf-8"

    /// A whole response as raw bytes, for the connection guard's refusals (it sits below the HTTP encoder).
    static func rawResponse(_ status: HTTPResponseStatus) -> [UInt8] {
        let body = "\(status.code) \(status.reasonPhrase)\n"
        let head = "HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\nContent-Type: text/plain; charset=utf-8\r\n"
            + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n"
        return Array((head + body).utf8)
    }
}

/// The `/metrics` server could not listen: which call failed, on which address, and why.
public struct MetricsServerError: Error, CustomStringConvertible, Sendable {
    public let description: String

    init(_ call: String, address: MetricsAddress, code: Int32 = errno) {
        var text = "cannot serve metrics on \(address): \(call): \(String(cString: strerror(code)))"
        if code == EADDRINUSE { text += " (another process listens there; pick another --metrics-address)" }
        if code == EADDRNOTAVAIL { text += " (not an address of this host)" }
        description = text
    }
}

/// Shared by the server and its connections: the open connections and the counters (atomics, so tests
/// and scrapes read them from any thread), mirrored into Prometheus counters when a registry is given.
final class MetricsServerState: Sendable {
    struct Refused: Error {}

    enum Event { case headTimeout, requestTimeout, headTooLarge, bodyTooLarge, malformed, scrape }

    let limits: MetricsHTTPServer.Limits
    /// An open connection; `headComplete` once its request head is in.
    private struct OpenConnection {
        var channel: any Channel
        var sequence: UInt64
        var headComplete = false
    }

    private struct OpenConnections {
        var byChannel: [ObjectIdentifier: OpenConnection] = [:]
        var admittedTotal: UInt64 = 0
    }

    private let open = Mutex(OpenConnections())
    private let accepted = Atomic<Int>(0), refused = Atomic<Int>(0), evicted = Atomic<Int>(0)
    private let headTimeouts = Atomic<Int>(0), requestTimeouts = Atomic<Int>(0)
    private let headTooLarge = Atomic<Int>(0), bodyTooLarge = Atomic<Int>(0), malformed = Atomic<Int>(0)
    private let scrapes = Atomic<Int>(0)
    private let exported: Exported?

    /// The Prometheus side of the counters.
    private struct Exported: Sendable {
        let refused: Counter, evicted: Counter
        let headTimeouts: Counter, requestTimeouts: Counter
        let headTooLarge: Counter, bodyTooLarge: Counter, malformed: Counter

        init(_ registry: PrometheusCollectorRegistry) {
            refused = registry.makeCounter(descriptor: MetricNameDescriptor(
                metricName: "tcpnotify_metrics_http_refused_connections_total", unitName: "",
                helpText: "Connections to the /metrics server closed as accepted: the connection limit was reached."))
            evicted = registry.makeCounter(descriptor: MetricNameDescriptor(
                metricName: "tcpnotify_metrics_http_evicted_connections_total", unitName: "",
                helpText: "Slow connections to the /metrics server closed to admit a new one at the connection limit."))
            let timeouts = MetricNameDescriptor(
                metricName: "tcpnotify_metrics_http_timeouts_total", unitName: "",
                helpText: "Connections to the /metrics server closed at a deadline: the request head, or the whole request.")
            headTimeouts = registry.makeCounter(descriptor: timeouts, labels: [("deadline", "head")])
            requestTimeouts = registry.makeCounter(descriptor: timeouts, labels: [("deadline", "request")])
            let rejected = MetricNameDescriptor(
                metricName: "tcpnotify_metrics_http_rejected_requests_total", unitName: "",
                helpText: "Requests to the /metrics server refused: head or body too large, or not HTTP/1.")
            headTooLarge = registry.makeCounter(descriptor: rejected, labels: [("reason", "head_too_large")])
            bodyTooLarge = registry.makeCounter(descriptor: rejected, labels: [("reason", "body_too_large")])
            malformed = registry.makeCounter(descriptor: rejected, labels: [("reason", "malformed")])
        }
    }

    init(limits: MetricsHTTPServer.Limits, registry: PrometheusCollectorRegistry?) {
        self.limits = limits
        exported = registry.map(Exported.init)
    }

    /// Takes `channel` on. At `maxConnections`, the oldest connection still sending its request head is
    /// closed to make room (slowloris clients cannot hold every slot); when every open connection has sent
    /// its request, `channel` is refused.
    func admit(_ channel: any Channel) -> Bool {
        let (admitted, evictedChannel) = open.withLock { open -> (Bool, (any Channel)?) in
            var victim: (any Channel)?
            if open.byChannel.count >= limits.maxConnections {
                guard let slowest = open.byChannel.values.filter({ !$0.headComplete }).min(by: { $0.sequence < $1.sequence })
                else { return (false, nil) }
                open.byChannel[ObjectIdentifier(slowest.channel)] = nil
                victim = slowest.channel
            }
            open.admittedTotal += 1
            open.byChannel[ObjectIdentifier(channel)] = OpenConnection(channel: channel, sequence: open.admittedTotal)
            return (true, victim)
        }
        guard admitted else {
            refused.add(1, ordering: .relaxed)
            exported?.refused.increment()
            return false
        }
        if let evictedChannel {
            evicted.add(1, ordering: .relaxed)
            exported?.evicted.increment()
            evictedChannel.close(promise: nil)
        }
        accepted.add(1, ordering: .relaxed)
        channel.closeFuture.whenComplete { [self] _ in
            _ = open.withLock { $0.byChannel.removeValue(forKey: ObjectIdentifier(channel)) }
        }
        return true
    }

    /// The connection's request head is complete: it is served, not evicted.
    func headCompleted(_ channel: any Channel) {
        open.withLock { $0.byChannel[ObjectIdentifier(channel)]?.headComplete = true }
    }

    func openChannels() -> [any Channel] { open.withLock { $0.byChannel.values.map(\.channel) } }

    func count(_ event: Event) {
        switch event {
        case .headTimeout: headTimeouts.add(1, ordering: .relaxed); exported?.headTimeouts.increment()
        case .requestTimeout: requestTimeouts.add(1, ordering: .relaxed); exported?.requestTimeouts.increment()
        case .headTooLarge: headTooLarge.add(1, ordering: .relaxed); exported?.headTooLarge.increment()
        case .bodyTooLarge: bodyTooLarge.add(1, ordering: .relaxed); exported?.bodyTooLarge.increment()
        case .malformed: malformed.add(1, ordering: .relaxed); exported?.malformed.increment()
        case .scrape: scrapes.add(1, ordering: .relaxed)
        }
    }

    func snapshot() -> MetricsHTTPServer.Counters {
        var counters = MetricsHTTPServer.Counters()
        counters.accepted = accepted.load(ordering: .relaxed)
        counters.refused = refused.load(ordering: .relaxed)
        counters.evicted = evicted.load(ordering: .relaxed)
        counters.headTimeouts = headTimeouts.load(ordering: .relaxed)
        counters.requestTimeouts = requestTimeouts.load(ordering: .relaxed)
        counters.headTooLarge = headTooLarge.load(ordering: .relaxed)
        counters.bodyTooLarge = bodyTooLarge.load(ordering: .relaxed)
        counters.malformed = malformed.load(ordering: .relaxed)
        counters.scrapes = scrapes.load(ordering: .relaxed)
        counters.open = open.withLock { $0.byChannel.count }
        return counters
    }
}

/// First in each connection's pipeline, on raw bytes: measures the request head (up to its blank line)
/// and body against their caps, and enforces the head and request deadlines. A refusal is written here
/// as raw bytes, below the HTTP encoder, and the connection closed; anything written after it is dropped.
final class MetricsConnectionGuard: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let limits: MetricsHTTPServer.Limits
    private let state: MetricsServerState
    private var headBytes = 0
    private var bodyBytes = 0
    private var headComplete = false
    /// The end-of-head scan: the current line has a byte other than CR.
    private var lineHasContent = false
    /// A line with content (the request line) has ended: the next empty line ends the head.
    private var sawRequestLine = false
    private var responding = false
    private var refused = false
    private var deadlines: [Scheduled<Void>] = []

    init(limits: MetricsHTTPServer.Limits, state: MetricsServerState) {
        self.limits = limits
        self.state = state
    }

    func channelActive(context: ChannelHandlerContext) {
        let loop = context.eventLoop.assumeIsolated()
        deadlines = [
            loop.scheduleTask(in: .init(limits.headTimeout)) { [self] in
                guard !headComplete else { return }
                state.count(.headTimeout)
                refuse(context: context, .requestTimeout)
            },
            loop.scheduleTask(in: .init(limits.requestTimeout)) { [self] in
                state.count(.requestTimeout)
                refuse(context: context, .requestTimeout)
            },
        ]
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelDeadlines()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelDeadlines()
    }

    private func cancelDeadlines() {
        for deadline in deadlines { deadline.cancel() }
        deadlines = []
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }
        let buffer = unwrapInboundIn(data)
        if !headComplete {
            var consumed = 0
            for byte in buffer.readableBytesView {
                consumed += 1
                if advanceScan(byte) {
                    headComplete = true
                    state.headCompleted(context.channel)
                    break
                }
            }
            headBytes += consumed
            bodyBytes = buffer.readableBytes - consumed
            if headBytes > limits.maxHeadBytes {
                state.count(.headTooLarge)
                refuse(context: context, .requestHeaderFieldsTooLarge)
                return
            }
        } else {
            bodyBytes += buffer.readableBytes
        }
        if bodyBytes > limits.maxBodyBytes {
            state.count(.bodyTooLarge)
            refuse(context: context, .payloadTooLarge)
            return
        }
        context.fireChannelRead(data)
    }

    /// One byte of the head; true at its end: an empty line (CRs aside) after a line with content (the
    /// request line). Blank lines before the request line are skipped, as the HTTP parser skips them:
    /// counting a CR after a blank line as content let a client holding only CRs and LFs pass for one
    /// that had sent its request, safe from eviction until the request deadline.
    private func advanceScan(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "\n"):
            if !lineHasContent && sawRequestLine { return true }
            if lineHasContent { sawRequestLine = true }
            lineHasContent = false
        case UInt8(ascii: "\r"):
            break
        default:
            lineHasContent = true
        }
        return false
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The client shut down its side before a complete head: there is nothing to answer.
        if case ChannelEvent.inputClosed = event, !headComplete {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard !refused else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        responding = true
        context.write(data, promise: promise)
    }

    /// Answers `status` unless a response has begun, and closes.
    private func refuse(context: ChannelHandlerContext, _ status: HTTPResponseStatus) {
        guard !refused else { return }
        refused = true
        cancelDeadlines()
        guard !responding else {
            context.close(promise: nil)
            return
        }
        let bytes = MetricsHTTPServer.rawResponse(status)
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }
}

/// Answers the one request of a connection, then closes it.
final class MetricsRequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let state: MetricsServerState
    private let bodyThread: NIOThreadPool
    private let body: @Sendable () -> [UInt8]
    private let routes: MetricsHTTPServer.Routes
    private var request: MetricsHTTPServer.Route?
    private var answered = false
    /// The decoder may report a bad request more than once (again at the close): counted once.
    private var malformed = false

    init(state: MetricsServerState, bodyThread: NIOThreadPool, routes: @escaping MetricsHTTPServer.Routes,
         body: @escaping @Sendable () -> [UInt8]) {
        self.state = state
        self.bodyThread = bodyThread
        self.routes = routes
        self.body = body
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else { return } // a pipelined second request: this connection closes after the first
        switch unwrapInboundIn(data) {
        case .head(let head):
            request = MetricsHTTPServer.route(method: head.method, uri: head.uri, version: head.version)
        case .body:
            break // capped by the guard, ignored
        case .end:
            guard let request else { return }
            answered = true
            respond(context: context, request)
        }
    }

    private func respond(context: ChannelHandlerContext, _ route: MetricsHTTPServer.Route) {
        switch route {
        case .status(let status):
            if status == .badRequest { state.count(.malformed) }
            let extra = status == .methodNotAllowed ? [("Allow", "GET, HEAD")] : []
            let text = Array("\(status.code) \(status.reasonPhrase)\n".utf8)
            send(context: context, status, contentType: "text/plain; charset=utf-8", body: text, includeBody: true, extra: extra)
        case .metrics(let head):
            let state = self.state
            bodyThread.runIfActive(eventLoop: context.eventLoop, body).assumeIsolated().whenComplete { [self] result in
                guard context.channel.isActive else { return }
                switch result {
                case .success(let payload):
                    state.count(.scrape)
                    send(context: context, .ok, contentType: MetricsHTTPServer.metricsContentType, body: payload,
                         includeBody: !head, extra: [])
                case .failure:
                    context.close(promise: nil) // stopping
                }
            }
        case .other(let path, let head):
            let routes = self.routes
            bodyThread.runIfActive(eventLoop: context.eventLoop) { routes(path) }.assumeIsolated().whenComplete { [self] result in
                guard context.channel.isActive else { return }
                switch result {
                case .success(let reply?):
                    send(context: context, HTTPResponseStatus(statusCode: reply.status), contentType: reply.contentType,
                         body: reply.body, includeBody: !head, extra: [])
                case .success(nil):
                    let status = HTTPResponseStatus.notFound
                    send(context: context, status, contentType: "text/plain; charset=utf-8",
                         body: Array("\(status.code) \(status.reasonPhrase)\n".utf8), includeBody: !head, extra: [])
                case .failure:
                    context.close(promise: nil) // stopping
                }
            }
        }
    }

    private func send(context: ChannelHandlerContext, _ status: HTTPResponseStatus, contentType: String, body: [UInt8],
                      includeBody: Bool, extra: [(String, String)]) {
        var headers = HTTPHeaders([("Content-Type", contentType), ("Content-Length", "\(body.count)")])
        headers.add(contentsOf: extra)
        headers.add(name: "Connection", value: "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        if includeBody {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // HTTPServerProtocolErrorHandler, before this one, has answered 400 if it could.
        if error is HTTPParserError && !malformed && !answered {
            malformed = true
            state.count(.malformed)
        }
        context.close(promise: nil)
    }
}

