import NIOCore
import NIOHTTP1

/// The request-head deadline of an HTTP connection (SPEC 2.5): a request head must arrive
/// whole within `headTimeout` of the connection opening, or of the first byte of a later
/// request on a kept-alive connection. A connection that breaks it is closed, so sockets that
/// send half a head (or nothing) cannot pile up. Idle kept-alive connections, and requests whose
/// body stalls, are Hummingbird's `HTTPConnectionStateHandler`'s (`--http-idle-timeout`).
///
/// Two watchers share it: one next to the socket sees bytes arrive, one after the HTTP decoder
/// sees heads arrive and responses end. Both leave the pipeline when it upgrades to WebSocket.
///
///     let deadlines = HTTPDeadlines(headTimeout: .seconds(10))
///     try sync.addHandler(deadlines.byteWatcher, position: .first)
///     try sync.addHandler(deadlines.partWatcher, position: .after(decoder))
final class HTTPDeadlines {
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
        byteWatcher.deadlines = self
        partWatcher.deadlines = self
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
            let deadlines = loop.value
            guard deadlines.phase == .awaitingHead else { return }
            deadlines.channel?.close(promise: nil)
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
        byteWatcher.deadlines = nil
        partWatcher.deadlines = nil
    }

    /// First in the pipeline: raw bytes in, passed on untouched.
    final class ByteWatcher: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = ByteBuffer
        typealias InboundOut = ByteBuffer
        fileprivate var deadlines: HTTPDeadlines?

        func handlerAdded(context: ChannelHandlerContext) {
            if context.channel.isActive { deadlines?.start(context.channel) }
        }

        func channelActive(context: ChannelHandlerContext) {
            deadlines?.start(context.channel)
            context.fireChannelActive()
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            deadlines?.bytesArrived()
            context.fireChannelRead(data)
        }

        func channelInactive(context: ChannelHandlerContext) {
            deadlines?.finish()
            context.fireChannelInactive()
        }

        func handlerRemoved(context: ChannelHandlerContext) {
            deadlines?.finish()
        }
    }

    /// After the HTTP decoder: request heads in, response ends out.
    final class PartWatcher: ChannelDuplexHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias InboundOut = HTTPServerRequestPart
        typealias OutboundIn = HTTPServerResponsePart
        typealias OutboundOut = HTTPServerResponsePart
        fileprivate var deadlines: HTTPDeadlines?

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            if case .head = unwrapInboundIn(data) { deadlines?.headArrived() }
            context.fireChannelRead(data)
        }

        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            if case .end = unwrapOutboundIn(data) { deadlines?.responseEnded() }
            context.write(data, promise: promise)
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            // Shutdown: a connection still waiting for a head has nothing to finish.
            if event is ChannelShouldQuiesceEvent, let deadlines, deadlines.phase != .inRequest, deadlines.openRequests == 0 {
                context.close(promise: nil)
                return
            }
            context.fireUserInboundEventTriggered(event)
        }
    }
}
