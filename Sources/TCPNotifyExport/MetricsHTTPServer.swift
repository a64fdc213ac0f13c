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
