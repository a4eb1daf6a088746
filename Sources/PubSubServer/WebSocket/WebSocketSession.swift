import Logging
import NIOCore
import NIOWebSocket
import PubSubAuth
import PubSubCore
import PubSubProtocol

/// One WebSocket connection, living on its channel's event loop: its lifecycle, its reads and
/// its close. Its ``SessionWire`` (native or Phoenix) turns text frames into requests, which
/// its ``CommandDispatcher`` runs against the hub and the engine; its ``OutboundWriter``
/// writes what publishers queued in its ``Subscriber``.
///
/// Publishers push into the subscriber's queue from any thread; the first push into an empty
/// queue schedules one drain on this loop, which writes every queued frame (pre-encoded,
/// shared bytes) and flushes once.
final class WebSocketSession: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum Phase { case open, shuttingDown, closing, closed }

    private let state: ServerState
    private let wire: any SessionWire
    private let writer: RawFrameWriter
    private let logger: Logger
    private var context: ChannelHandlerContext!
    let clientID: String
    // `let`s, made with the session: each call through them is at +0, no retain and release
    // of the object per message as a `var` reference costs.
    let subscriber: Subscriber
    private let dispatcher: CommandDispatcher
    private let outbound: OutboundWriter
    private var reader: WebSocketReader
    private var phase = Phase.open
    private var lastSeen = NIODeadline.now()
    private var heartbeat: RepeatedTask?
    private var closeTimer: Scheduled<Void>?
    /// When `closeTimer` fires.
    private var closeDeadline = NIODeadline.distantFuture
    private var handshakeTimer: Scheduled<Void>?
    /// Fires when the connection's token expires (with `--auth token`).
    private var expiryTimer: Scheduled<Void>?
    private let openedAt = NIODeadline.now()
    /// Why the connection ends, for its last log line: set by whichever side closes first.
    private var closeReason: String?

    init(state: ServerState, wire: any SessionWire, writer: RawFrameWriter, eventLoop: any EventLoop, logger: Logger, grant: Grant? = nil) {
        self.state = state
        self.wire = wire
        self.writer = writer
        self.logger = logger
        self.reader = WebSocketReader(
            maxMessageBytes: state.configuration.maxFrameBytes, compressionNegotiated: wire.inflater != nil
        )
        clientID = state.nextClientID()
        // The subscriber's wake reaches this session weakly: the session holds the subscriber,
        // and a strong way back kept both (with the channel's buffers) alive after the close.
        let wakeTarget = WeakSession()
        let wakeLoopBound = NIOLoopBound(wakeTarget, eventLoop: eventLoop)
        subscriber = Subscriber(
            clientID: clientID, user: grant?.user, format: wire.format, limits: state.configuration.queue,
            counters: state.hub.counters, maxSubscriptions: state.configuration.maxSubscriptionsPerConnection
        ) {
            eventLoop.execute { wakeLoopBound.value.session?.drain() }
        }
        dispatcher = CommandDispatcher(state: state, subscriber: subscriber, eventLoop: eventLoop, grant: grant)
        outbound = OutboundWriter(
            subscriber: subscriber, wire: wire, writer: writer, counters: state.hub.counters, metrics: state.metrics, logger: logger
        )
        wakeTarget.session = self
        dispatcher.session = self
        state.sessionsInMemory.wrappingAdd(1, ordering: .relaxed)
    }

    deinit {
        state.sessionsInMemory.wrappingSubtract(1, ordering: .relaxed)
    }

    // MARK: lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        let loop = NIOLoopBound(self, eventLoop: context.eventLoop)
        state.connectionsCurrent.wrappingAdd(1, ordering: .relaxed)
        state.connectionsOpened.wrappingAdd(1, ordering: .relaxed)
        logger.info(
            "connection opened",
            metadata: SessionLog.opened(clientID: clientID, format: wire.format, remote: context.channel.remoteAddress, user: dispatcher.grant?.user)
        )
        if let greeting = wire.greeting(clientID: clientID) { subscriber.enqueue(.frame(greeting)) }

        let interval = TimeAmount.nanoseconds(Int64(state.configuration.heartbeatSeconds * 1e9))
        heartbeat = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            loop.value.onHeartbeat()
        }
        tokenReplaced(dispatcher.grant)
    }

    static let longestExpiryDelayMillis: Int64 = 100 * 366 * 86_400_000

    /// The connection's credential is now `grant`: the expiry timer follows its `exp`.
    func tokenReplaced(_ grant: Grant?) {
        expiryTimer?.cancel()
        expiryTimer = nil
        guard let context, let expiresAt = grant?.expiresAtMillis else { return }
        let loop = NIOLoopBound(self, eventLoop: context.eventLoop)
        // At most a century away: a TimeAmount holds nanoseconds in an Int64 (292 years), and a
        // token that outlives the connection by that much need not be timed.
        let delay = min(max(0, expiresAt - WallClock.nowMillis()), Self.longestExpiryDelayMillis)
        expiryTimer = context.eventLoop.scheduleTask(in: .milliseconds(delay)) {
            loop.value.tokenExpired()
        }
    }

    /// Expired without a refresh (SPEC 7): UNAUTHORIZED, then a close with 1008.
    private func tokenExpired() {
        guard phase == .open else { return }
        writer.write(wire.notice(.error(PubSubError(.unauthorized, "token expired"))))
        close(code: .policyViolation, reason: "token expired")
    }

    func channelInactive(context: ChannelHandlerContext) {
        tearDown()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        tearDown()
        // The context holds this handler: keeping it would keep the session, and through it
        // the subscriber and the channel's buffers, for as long as the process runs.
        self.context = nil
    }

    private func tearDown() {
        guard phase != .closed else { return }
        phase = .closed
        // Cancelled and let go of: each task's closure holds this session.
        heartbeat?.cancel()
        heartbeat = nil
        closeTimer?.cancel()
        closeTimer = nil
        handshakeTimer?.cancel()
        handshakeTimer = nil
        expiryTimer?.cancel()
        expiryTimer = nil
        outbound.close()
        dispatcher.close()
        state.connectionsCurrent.wrappingSubtract(1, ordering: .relaxed)
        logger.info("connection closed", metadata: SessionLog.closed(clientID: clientID, reason: closeReason, openedAt: openedAt))
    }

    // MARK: inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var active = false
        dispatcher.beginRead()
        do throws(WebSocketReader.Failure) {
            try reader.read(unwrapInboundIn(data)) { message in
                // Phoenix clients prove liveness with heartbeat messages, not WebSocket pongs.
                if case .pong = message, !wire.sendsPings {} else { active = true }
                return handle(consume message)
            }
        } catch {
            guard phase == .open || phase == .shuttingDown else { return }
            switch error {
            case .tooLarge:
                close(code: .messageTooLarge, reason: "frame exceeds \(state.configuration.maxFrameBytes) bytes")
            case .protocolError(let reason):
                close(code: .protocolError, reason: reason)
            }
        }
        dispatcher.publishHeld()
        if active { lastSeen = .now() }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        dispatcher.endRead()
        context.fireChannelReadComplete()
    }

    /// A message of JSON requests, from a text frame (or, where the wire reads them, a binary
    /// one); returns false when nothing after it should be read.
    private func handleJSON(_ message: ByteBuffer, compressed: Bool, binary: Bool) -> Bool {
        guard phase == .open else { return true }
        var text = message
        // The reader refuses RSV1 unless permessage-deflate was negotiated (an inflater).
        if compressed, let inflater = wire.inflater {
            do throws(PubSubError) {
                text = try inflater.inflate(text, limit: state.configuration.maxFrameBytes)
            } catch {
                close(code: error.code == .messageTooLarge ? .messageTooLarge : .dataInconsistentWithMessage, reason: error.message)
                return false
            }
        }
        guard wire.batched else { return handleRequest(text, binary: binary) }
        // Each line is a request of its own, answered as if it had come alone.
        return BatchedFrames.forEachLine(text) { handleRequest($0, binary: binary) }
    }

    /// One JSON request; returns false when nothing after it should be read.
    private func handleRequest(_ text: ByteBuffer, binary: Bool) -> Bool {
        guard let request = wire.decode(text, limits: dispatcher.decodingLimits) else {
            if binary {
                // Not a text frame, so not RFC 6455's 1007: a request that does not parse.
                dispatcher.dispatch(.reply(wire.unaddressedError(.badRequest("binary frame is not UTF-8 JSON"))))
                return true
            }
            // RFC 6455 8.1: close with 1007; nothing after it is read.
            close(code: .dataInconsistentWithMessage, reason: "text frame is not valid UTF-8")
            return false
        }
        dispatcher.dispatch(request)
        // Closed as a slow consumer by its replies: nothing after it is read.
        return phase != .closing
    }

    /// One inbound message; returns false when nothing after it should be read.
    private func handle(_ message: consuming WebSocketReader.Message) -> Bool {
        switch consume message {
        case .text(let text, let compressed):
            return handleJSON(text, compressed: compressed, binary: false)
        case .binary(let bytes, let compressed):
            guard phase == .open else { return true }
            guard wire.readsJSONInBinaryFrames else {
                dispatcher.dispatch(.reply(wire.unaddressedError(.badRequest("binary frames are not supported: send JSON in text frames"))))
                return true
            }
            return handleJSON(bytes, compressed: compressed, binary: true)
        case .ping(let payload):
            dispatcher.answerAtOnce(WebSocketFraming.frame(opcode: 0xA, payload: payload))
        case .pong:
            break
        case .close(var payload):
            if phase == .closing {
                context.close(promise: nil)
            } else {
                // Echo the client's close code, then close once it is written.
                let code = payload.readInteger(as: UInt16.self) ?? 1000
                closeReason = "client closed (\(code))"
                phase = .closing
                let written = context.eventLoop.makePromise(of: Void.self)
                let channel = context.channel
                written.futureResult.whenComplete { _ in channel.close(promise: nil) }
                writer.writeAndFlush(WebSocketFraming.closeFrame(code: code), promise: written)
            }
            return false
        }
        return true
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // Once closing, later errors change nothing: the close handshake or its timer ends
        // the connection.
        guard phase == .open || phase == .shuttingDown else { return }
        logger.debug("connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            shutDown()
        } else if let channelEvent = event as? ChannelEvent, channelEvent == .inputClosed {
            // The client went away without a close frame (the server allows half-closure).
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    /// While the engine's answer to a request is awaited, nothing more is read: what one read
    /// brought is held by the dispatcher, and the socket's backlog stays in the kernel.
    func pauseReading() {
        guard let context else { return }
        context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
    }

    func resumeReading() {
        guard let context, phase == .open || phase == .shuttingDown else { return }
        context.channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in }
        context.read()
    }

    // MARK: outbound (hot path)

    func drain() {
        guard phase == .open || phase == .shuttingDown else { return }
        if subscriber.hasOverflowed {
            slowConsumer()
            return
        }
        // A shutdown writes everything before the close frame, writable or not.
        outbound.drain(context, everything: phase == .shuttingDown)
        if phase == .shuttingDown { close(code: .goingAway, reason: "server shutdown") }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable && outbound.waitingForWritability {
            outbound.waitingForWritability = false
            drain()
        }
        context.fireChannelWritabilityChanged()
    }

    // MARK: closing

    func slowConsumer() {
        guard phase == .open || phase == .shuttingDown else { return }
        state.slowConsumerCloses.wrappingAdd(1, ordering: .relaxed)
        logger.warning("slow consumer closed", metadata: SessionLog.slowConsumer(clientID: clientID, limits: state.configuration.queue))
        let error = PubSubError(.slowConsumer, "outbound queue overflowed: the client does not read fast enough")
        writer.write(wire.notice(.error(error)))
        close(code: .policyViolation, reason: "slow consumer")
    }

    /// Sends a close frame, then closes the TCP connection when the client answers, or
    /// the configuration's `closeHandshakeSeconds` after the frame reached the socket (at most
    /// its `closeTimeoutSeconds`).
    private func close(code: WebSocketErrorCode, reason: String) {
        guard phase == .open || phase == .shuttingDown else { return }
        closeReason = closeReason ?? reason
        let shuttingDown = phase == .shuttingDown
        // Closing before the held batch is published: its replies, which go nowhere, cannot
        // overflow the queue into a second close. What the client published before is published.
        phase = .closing
        dispatcher.close()
        outbound.close()
        let channel = context.channel
        let eventLoop = context.eventLoop
        let loop = NIOLoopBound(self, eventLoop: eventLoop)
        if !shuttingDown {  // during shutdown the grace timer is the hard limit
            let limit = TimeAmount.nanoseconds(Int64(state.configuration.closeTimeoutSeconds * 1e9))
            cutOff(at: .now() + limit)
        }
        let handshake = TimeAmount.nanoseconds(Int64(state.configuration.closeHandshakeSeconds * 1e9))
        let written = eventLoop.makePromise(of: Void.self)
        written.futureResult.whenComplete { _ in
            loop.value.handshakeTimer = eventLoop.scheduleTask(in: handshake) {
                channel.close(promise: nil)
            }
        }
        writer.writeAndFlush(WebSocketFraming.closeFrame(code: UInt16(webSocketErrorCode: code), reason: reason), promise: written)
    }

    /// Closes the TCP connection at `deadline` unless an earlier cut-off is already set.
    private func cutOff(at deadline: NIODeadline) {
        guard deadline < closeDeadline else { return }
        closeTimer?.cancel()
        closeDeadline = deadline
        let channel = context.channel
        closeTimer = context.eventLoop.scheduleTask(deadline: deadline) { channel.close(promise: nil) }
    }

    /// Graceful shutdown: no new events, tell the client, flush what is queued, close with 1001.
    /// A connection already closing is cut off within the grace too.
    private func shutDown() {
        let grace = TimeAmount.nanoseconds(Int64(state.configuration.shutdownGraceSeconds * 1e9))
        if phase == .closing { cutOff(at: .now() + grace) }
        guard phase == .open else { return }
        phase = .shuttingDown
        state.hub.unsubscribeAll(subscriber)
        subscriber.enqueue(.frame(wire.notice(.serverShutdown)))
        cutOff(at: .now() + grace)
    }

    private func onHeartbeat() {
        guard phase == .open else { return }
        let idle = TimeAmount.nanoseconds(Int64(state.configuration.idleTimeoutSeconds * 1e9))
        if NIODeadline.now() - lastSeen > idle {
            close(code: .goingAway, reason: "idle timeout")
            return
        }
        // A client that does not read gets no more pings piled on its socket; the idle
        // timeout above still closes it once it is silent.
        if wire.sendsPings && context.channel.isWritable {
            writer.writeAndFlush(WebSocketFraming.frame(opcode: 0x9, payload: ByteBuffer()))
        }
    }
}

extension UInt16 {
    init(webSocketErrorCode code: WebSocketErrorCode) {
        var buffer = ByteBuffer()
        buffer.write(webSocketErrorCode: code)
        self = buffer.readInteger(as: UInt16.self) ?? 1000
    }
}

/// How a subscriber's wake refers to its session without keeping it alive.
private final class WeakSession {
    weak var session: WebSocketSession?
}
