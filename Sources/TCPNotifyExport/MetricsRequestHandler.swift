import NIOCore
import NIOHTTP1
import NIOPosix

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
