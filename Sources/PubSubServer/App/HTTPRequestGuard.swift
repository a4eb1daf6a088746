import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1

/// Guards an HTTP connection until it upgrades (SPEC 2.5):
/// - a request head must arrive whole within `headTimeout` of the connection opening, or of the
///   first byte of a later request on a kept-alive connection; a connection that breaks it is
///   closed, so sockets that send half a head (or nothing) cannot pile up. Idle kept-alive
///   connections, and requests whose body stalls, are Hummingbird's `HTTPConnectionStateHandler`'s
///   (`--http-idle-timeout`);
/// - bytes that are not HTTP, or a head over the decoder's limit, get 400 (431 for the head)
///   with a JSON error and the connection is closed, instead of no answer at all.
///
/// Two watchers share it: one next to the socket sees bytes arrive, one after the HTTP decoder
/// sees heads arrive, responses end and the decoder's errors. Both leave the pipeline when it
/// upgrades to WebSocket.
///
///     let guard = HTTPRequestGuard(headTimeout: .seconds(10))
///     try sync.addHandler(guard.byteWatcher, position: .first)
///     try sync.addHandler(guard.partWatcher, position: .after(decoder))
final class HTTPRequestGuard {
    private enum Phase {
        /// Waiting for the rest of a head whose deadline is running.
        case awaitingHead
        /// Between a head and the end of its response.
        case inRequest
        /// Between requests: no deadline of ours until a byte arrives.
        case idle
    }

    private let headTimeout: TimeAmount
    private var phase = Phase.awaitingHead
    /// Heads read minus responses finished (a client may send its next request early).
    private var openRequests = 0
    private var deadline: Scheduled<Void>?
    private var channel: (any Channel)?

    let byteWatcher: ByteWatcher
    let partWatcher: PartWatcher

    init(headTimeout: TimeAmount) {
        self.headTimeout = headTimeout
        byteWatcher = ByteWatcher()
        partWatcher = PartWatcher()
        byteWatcher.owner = self
        partWatcher.owner = self
    }

    /// Starts the first head's deadline (on the channel's event loop).
    private func start(_ channel: any Channel) {
        guard self.channel == nil else { return }
        self.channel = channel
        arm()
    }

    private func arm() {
        guard let channel else { return }
        let loop = NIOLoopBound(self, eventLoop: channel.eventLoop)
        deadline = channel.eventLoop.scheduleTask(in: headTimeout) {
            let requestGuard = loop.value
            guard requestGuard.phase == .awaitingHead else { return }
            requestGuard.channel?.close(promise: nil)
        }
    }

    private func disarm() {
        deadline?.cancel()
        deadline = nil
    }

    private func bytesArrived() {
        guard phase == .idle else { return }
        phase = .awaitingHead
        arm()
    }

    private func headArrived() {
        openRequests += 1
        phase = .inRequest
        disarm()
    }

    private func responseEnded() {
        openRequests = max(0, openRequests - 1)
        if openRequests == 0 { phase = .idle }
    }

    /// Stops every timer and lets go of the channel and the watchers (the connection closed or
    /// upgraded to WebSocket).
    private func finish() {
        disarm()
        channel = nil
        byteWatcher.owner = nil
        partWatcher.owner = nil
    }

    /// First in the pipeline: raw bytes in, passed on untouched.
    final class ByteWatcher: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = ByteBuffer
        typealias InboundOut = ByteBuffer
        fileprivate var owner: HTTPRequestGuard?

        func handlerAdded(context: ChannelHandlerContext) {
            if context.channel.isActive { owner?.start(context.channel) }
        }

        func channelActive(context: ChannelHandlerContext) {
            owner?.start(context.channel)
            context.fireChannelActive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            owner?.bytesArrived()
            context.fireChannelRead(data)
        }

        func channelInactive(context: ChannelHandlerContext) {
            owner?.finish()
            context.fireChannelInactive()
        }

        func handlerRemoved(context: ChannelHandlerContext) {
            owner?.finish()
        }
    }

    /// After the HTTP decoder: request heads in, response ends out.
    final class PartWatcher: ChannelDuplexHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias InboundOut = HTTPServerRequestPart
        typealias OutboundIn = HTTPServerResponsePart
        typealias OutboundOut = HTTPServerResponsePart
        fileprivate var owner: HTTPRequestGuard?

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if case .head = unwrapInboundIn(data) { owner?.headArrived() }
            context.fireChannelRead(data)
        }

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            if case .end = unwrapOutboundIn(data) { owner?.responseEnded() }
            context.write(data, promise: promise)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            guard let parseError = error as? HTTPParserError, let owner, owner.openRequests == 0 else {
                // A request in progress: its handler sees the error (400 from ErrorMapping).
                context.fireErrorCaught(error)
                return
            }
            owner.disarm()
            let status: HTTPResponse.Status =
                parseError == .headerOverflow ? .requestHeaderFieldsTooLarge : .badRequest
            let refusal = HTTPError(status, message: "malformed HTTP request: \(parseError)")
            let (_, fields, body) = ErrorMapping.json(for: refusal)
            var headers = HTTPHeaders(fields.map { ($0.name.rawName, $0.value) })
            headers.replaceOrAdd(name: "Connection", value: "close")
            headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes))
            let head = HTTPResponseHead(version: .http1_1, status: .init(statusCode: status.code), headers: headers)
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            // Shutdown: a connection still waiting for a head has nothing to finish.
            if event is ChannelShouldQuiesceEvent, let owner, owner.phase != .inRequest, owner.openRequests == 0 {
                context.close(promise: nil)
                return
            }
            context.fireUserInboundEventTriggered(event)
        }
    }
}
