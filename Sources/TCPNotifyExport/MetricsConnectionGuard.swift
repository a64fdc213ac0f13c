import NIOCore
import NIOHTTP1

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
