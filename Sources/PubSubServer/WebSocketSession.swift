import Logging
import NIOCore
import NIOWebSocket
import PubSubCore
import PubSubProtocol

/// One WebSocket connection, living on its channel's event loop; its ``SessionWire`` (native or
/// Phoenix) turns text frames into ``ClientCommand``s and server messages into frames.
///
/// Inbound: decoded commands go to the broker via `execute`. Outbound (the hot path):
/// publishers push into the connection's ``Subscriber`` queue from any thread; the first push
/// into an empty queue schedules one `drain()` on this loop, which writes every queued frame
/// (pre-encoded, shared bytes) and flushes once.
final class WebSocketSession: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private enum State { case open, shuttingDown, closing, closed }

    private let state: ServerState
    private let wire: any SessionWire
    private let writer: RawFrameWriter
    private let logger: Logger
    private var context: ChannelHandlerContext!
    private(set) var subscriber: Subscriber!
    private(set) var clientID = ""
    private var pending = OutboundQueue()
    private var reader: WebSocketReader
    /// Replies produced by the current read, flushed into the queue at its end.
    private var replies = ByteBuffer()
    /// The topic this connection last published to (a publisher usually keeps to one).
    private var publishCache = PublishCache()
    /// This read's consecutive native publishes to one topic, published together.
    private var batch = PublishBatch()
    private var phase = State.open
    private var lastSeen = NIODeadline.now()
    private var heartbeat: RepeatedTask?
    private var closeTimer: Scheduled<Void>?
    private var handshakeTimer: Scheduled<Void>?
    private var waitingForWritability = false
    private var droppedUnreported = 0
    private var lastDropNotice = NIODeadline.uptimeNanoseconds(0)
    private var dropNoticeTimer: Scheduled<Void>?
    /// `--publish-rate`: this connection's publishes; nil when not limited.
    private var publishBucket: TokenBucket?
    /// When the current read arrived (monotonic), for the publish bucket.
    private var readClock: UInt64 = 0

    init(state: ServerState, wire: any SessionWire, writer: RawFrameWriter, logger: Logger) {
        self.state = state
        self.wire = wire
        self.writer = writer
        self.logger = logger
        self.reader = WebSocketReader(
            maxMessageBytes: state.configuration.maxFrameBytes, compressionNegotiated: wire.inflater != nil
        )
        state.sessionsInMemory.wrappingAdd(1, ordering: .relaxed)
    }

    deinit {
        state.sessionsInMemory.wrappingSubtract(1, ordering: .relaxed)
    }

    // MARK: lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        clientID = state.nextClientID()
        let loop = NIOLoopBound(self, eventLoop: context.eventLoop)
        let eventLoop = context.eventLoop
        // The subscriber's wake reaches this session weakly: the session holds the subscriber,
        // and a strong way back kept both (with the channel's buffers) alive after the close.
        let wakeTarget = NIOLoopBound(WeakSession(self), eventLoop: eventLoop)
        subscriber = Subscriber(
            clientID: clientID, format: wire.format, limits: state.configuration.queue,
            counters: state.broker.counters, maxSubscriptions: state.configuration.maxSubscriptionsPerConnection
        ) {
            eventLoop.execute { wakeTarget.value.session?.drain() }
        }
        state.connectionsCurrent.wrappingAdd(1, ordering: .relaxed)
        state.connectionsOpened.wrappingAdd(1, ordering: .relaxed)
        publishBucket = state.configuration.publishLimit.map { TokenBucket($0, now: NIODeadline.now().uptimeNanoseconds) }
        if let greeting = wire.greeting(clientID: clientID) { subscriber.enqueue(.frame(greeting)) }

        let interval = TimeAmount.nanoseconds(Int64(state.configuration.heartbeatSeconds * 1e9))
        heartbeat = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            loop.value.onHeartbeat()
        }
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
        dropNoticeTimer?.cancel()
        dropNoticeTimer = nil
        state.broker.unsubscribeAll(subscriber)
        subscriber.close()
        pending.removeAll()
        state.connectionsCurrent.wrappingSubtract(1, ordering: .relaxed)
    }

    // MARK: inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var active = false
        // The messages of one read arrived together: their publications share one timestamp.
        publishCache.now = WallClock.nowMillis()
        defer { publishCache.now = nil }
        if publishBucket != nil { readClock = NIODeadline.now().uptimeNanoseconds }
        do throws(WebSocketReader.Failure) {
            try reader.read(unwrapInboundIn(data)) { message in
                // Phoenix clients prove liveness with heartbeat messages, not WebSocket pongs.
                if case .pong = message, !wire.sendsPings {} else { active = true }
                return handle(consume message)
            }
        } catch {
            publishBatched()
            guard phase == .open || phase == .shuttingDown else { return }
            switch error {
            case .tooLarge:
                close(code: .messageTooLarge, reason: "frame exceeds \(state.configuration.maxFrameBytes) bytes")
            case .protocolError(let reason):
                close(code: .protocolError, reason: reason)
            }
        }
        publishBatched()
        if active { lastSeen = .now() }
    }

    /// One inbound message; returns false when nothing after it should be read.
    private func handle(_ message: consuming WebSocketReader.Message) -> Bool {
        // Control frames are answered at once: what was published before them goes first.
        if case .text = message {} else { publishBatched() }
        switch consume message {
        case .text(var text, let compressed):
            guard phase == .open else { return true }
            // The reader refuses RSV1 unless permessage-deflate was negotiated (an inflater).
            if compressed, let inflater = wire.inflater {
                do throws(PubSubError) {
                    text = try inflater.inflate(text, limit: state.configuration.maxFrameBytes)
                } catch {
                    close(code: error.code == .messageTooLarge ? .messageTooLarge : .dataInconsistentWithMessage, reason: error.message)
                    return false
                }
            }
            // The wire checks that it is UTF-8 (unless its decoder saw only ASCII).
            wire.receive(text: text, session: self)
            // Refused (not UTF-8), the connection is closing: nothing after it is read.
            if phase == .closing { return false }
        case .binary:
            guard phase == .open else { return true }
            reply(wire.unaddressedError(.badRequest("binary frames are not supported: send JSON in text frames")))
        case .ping(let payload):
            // Answered ahead of what the rest of the read makes, but through the queue, so a
            // client that pings without reading is bounded too.
            flushReplies()
            queue(WebSocketFraming.frame(opcode: 0xA, payload: payload))
        case .pong:
            break
        case .close(var payload):
            if phase == .closing {
                context.close(promise: nil)
            } else {
                // Echo the client's close code, then close once it is written.
                let code = payload.readInteger(as: UInt16.self) ?? 1000
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

    var decodingLimits: DecodingLimits { DecodingLimits(maxMessageBytes: state.configuration.maxMessageBytes) }

    /// Ends the connection over a text frame that is not UTF-8 (RFC 6455 8.1: close with 1007);
    /// the rest of the read is not looked at.
    func refuseInvalidUTF8() {
        close(code: .dataInconsistentWithMessage, reason: "text frame is not valid UTF-8")
    }

    /// Runs a client command against the broker; `encode` appends the outcome, as the wire's
    /// reply frame, to a buffer.
    func execute(_ command: consuming ClientCommand, encode: (ServerMessage, inout ByteBuffer) -> Void) {
        publishBatched()
        do throws(PubSubError) {
            // Consumed: the topic and message move into the broker call, no copy of them.
            switch consume command {
            case .ping:
                encode(.pong, &replies)
            case .subscribe(let topic, let replay):
                // The topic queues the ack itself, ahead of the replay: earlier replies go first.
                flushReplies()
                _ = try state.broker.subscribe(subscriber, topic: topic, replay: replay) { frame(.subscribed($0)) }
            case .unsubscribe(let topic):
                flushReplies()
                try state.broker.unsubscribe(subscriber, topic: topic) { frame(.unsubscribed(topic: topic, subscriberCount: $0)) }
            case .publish(let topic, let message, let ack):
                try takePublishToken()
                // The broker at +0 (the server state holds it for the server's life): a local
                // reference would be retained and released per publish. The message goes in
                // through an optional, as a closure cannot consume it.
                var input = Optional(consume message)
                let result = Unmanaged.passUnretained(state.broker)._withUnsafeGuaranteedRef { broker in
                    Result { () throws(PubSubError) in try broker.publish(topic: topic, message: input.take()!, cache: &publishCache) }
                }
                let receipt = try result.get()
                if ack { encode(.published(receipt), &replies) }
            }
        } catch {
            encode(.error(error), &replies)
        }
        queueRepliesIfLarge()

        func frame(_ message: ServerMessage) -> ByteBuffer {
            var frame = ByteBuffer()
            encode(message, &frame)
            return frame
        }
    }

    /// Drops every subscription of this connection (Phoenix leave and rejoin).
    func leaveAll() {
        state.broker.unsubscribeAll(subscriber)
    }

    /// Appends a reply to this read's replies (acks, pongs, errors, Phoenix replies): they are
    /// queued as one frame buffer when the read is done (or before a subscribe or unsubscribe,
    /// whose acks the topic queues), not one queue entry each.
    func respond(_ encode: (inout ByteBuffer) -> Void) {
        publishBatched()
        encode(&replies)
        queueRepliesIfLarge()
    }

    /// ``respond(_:)`` with a frame already built.
    func reply(_ frame: ByteBuffer) {
        publishBatched()
        replies.writeImmutableBuffer(frame)
        queueRepliesIfLarge()
    }

    /// A read that makes more replies than this queues them in pieces of about this size,
    /// each under the queue's limits, rather than as one item as large as the read makes it.
    static let replyChunkBytes = 64 * 1024

    private func queueRepliesIfLarge() {
        if replies.readableBytes >= Self.replyChunkBytes { flushReplies() }
    }

    /// Takes a token from this connection's publish bucket, if it has one.
    private func takePublishToken() throws(PubSubError) {
        guard var bucket = publishBucket else { return }
        defer { publishBucket = bucket }
        guard bucket.take(now: readClock) else { throw .rateLimited(retryAfter: bucket.secondsUntilNext(now: readClock)) }
    }

    /// A native publish, held until the read's next command of another kind or topic, its
    /// end, or ``PublishBatch/limit`` messages, and then published with the ones beside it
    /// in one broker call (``Broker/publish(topic:messages:cache:receipts:)``): a fan-out
    /// to many subscribers then visits each once per batch instead of once per message. Its
    /// ack (or error) is written then, in order with every other reply; `encode` writes it.
    func publish(
        topic: String, message: consuming MessageInput, ack: Bool, requestID: String?,
        encode: @escaping (ServerMessage, String?, inout ByteBuffer) -> Void
    ) {
        // Over the rate: refused and not published, its error in order with the replies.
        do throws(PubSubError) {
            try takePublishToken()
        } catch {
            respond { encode(.error(error), requestID, &$0) }
            return
        }
        if !batch.messages.isEmpty && batch.topic != topic { publishBatched() }
        batch.topic = topic
        batch.encode = encode
        batch.messages.append(message)
        batch.replies.append(PublishBatch.Reply(ack: ack, requestID: requestID))
        if batch.messages.count >= PublishBatch.limit { publishBatched() }
    }

    /// Publishes the held batch and writes its replies.
    private func publishBatched() {
        guard !batch.messages.isEmpty, let encode = batch.encode else { return }
        // Taken out whole for the call (two of its members are lent at once), storage and all.
        var held = PublishBatch()
        swap(&held, &batch)
        defer {
            held.removeAll()
            swap(&held, &batch)
        }
        // The broker at +0, as in `execute`.
        let result = Unmanaged.passUnretained(state.broker)._withUnsafeGuaranteedRef { broker in
            Result { () throws(PubSubError) in
                try broker.publish(topic: held.topic, messages: &held.messages, cache: &publishCache, receipts: &held.receipts)
            }
        }
        let failure: PubSubError? = if case .failure(let error) = result { error } else { nil }
        for (index, reply) in held.replies.enumerated() {
            if index < held.receipts.count {
                if reply.ack { encode(.published(held.receipts[index]), reply.requestID, &replies) }
            } else if let failure {
                encode(.error(failure), reply.requestID, &replies)
            }
        }
        queueRepliesIfLarge()
    }

    /// Queues this read's replies so far. A client whose unread replies pass the queue's
    /// limits is closed as a slow consumer at once, and nothing more it sent is read.
    private func flushReplies() {
        guard replies.readableBytes > 0 else { return }
        queue(replies)
        replies.clear()  // fresh storage of the same capacity: the queue holds the old one
    }

    /// Queues frames this connection made for itself (replies, pongs); past the queue's
    /// limits the client is closed as a slow consumer.
    private func queue(_ frames: ByteBuffer) {
        if !subscriber.enqueue(.frame(frames)) && subscriber.hasOverflowed { slowConsumer() }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushReplies()
        context.fireChannelReadComplete()
    }

    // MARK: outbound (hot path)

    func drain() {
        guard phase == .open || phase == .shuttingDown else { return }
        if subscriber.hasOverflowed {
            slowConsumer()
            return
        }
        guard context.channel.isWritable else {
            // Resume when the socket drains; meanwhile the queue's limits and policy apply.
            waitingForWritability = true
            return
        }
        var delivered = 0
        var more: Bool
        repeat {
            let batch = subscriber.drain(into: &pending, maxBytes: Self.writeChunkBytes)
            // Tell the client about losses before it sees the events that survived them.
            if batch.dropped > 0 { noteDrops(batch.dropped) }
            delivered += writePending(bytes: batch.bytes, prefix: wire.deliveryPrefix)
            writer.flush()
            more = batch.more
            // A shutdown writes everything before the close frame, writable or not.
        } while more && (context.channel.isWritable || phase == .shuttingDown)
        if more { waitingForWritability = true }
        if phase == .shuttingDown { close(code: .goingAway, reason: "server shutdown") }
        if delivered > 0 { state.broker.counters.recordDelivered(delivered) }
    }

    /// The most a drain copies into one write before it flushes and asks the channel whether
    /// it takes more. A socket that takes less (a slow reader) leaves the rest in the
    /// subscriber's queue, shared and still under its limits and policy, instead of as a copy
    /// the channel holds for this connection alone. 256 events of 256 bytes; a fast reader's
    /// batch of a busy tick costs one more write system call per 64 KB.
    static let writeChunkBytes = 64 * 1024

    /// Writes the drained items as one buffer: a copy of each shared frame costs less than a
    /// channel write per frame (one pending-write entry, retain and iovec per item), and the
    /// socket gets one write per batch. Frames are copied, never re-encoded, straight from
    /// where their bytes lie (``PublicationFrames/bytes(_:)``) into the batch's storage: no
    /// `ByteBuffer` call per event. For wires whose deliveries need per-connection bytes
    /// (Phoenix 2.0.0's join_ref), each event is written as frame header + `prefix` + the shared
    /// body. Items are moved out of `pending`, not copied. The batch is written into the
    /// thread's reused ``BatchBuffer``. Returns the events written.
    private func writePending(bytes: Int, prefix: ByteBuffer?) -> Int {
        let format = wire.format
        if pending.count == 1 {
            // A lone event or reply (or one read's replies): the shared frame itself, no copy.
            switch pending.popFirst()! {
            case .publication(let publication) where prefix == nil:
                writer.write(publication.content.frames[format]!)
                return 1
            case .frame(let frame):
                writer.write(frame.bytes)
                return 0
            case let item:
                pending.append(item)  // a Phoenix 2.0.0 event or a deletion: framed below
            }
        }
        let perItem = prefix.map { $0.readableBytes + WebSocketFraming.maxHeaderSize } ?? 0
        var batch = BatchBuffer.take(capacity: bytes + pending.count * perItem, allocator: context.channel.allocator)
        var delivered = 0
        // Where a run of copies stopped: at a deletion (its notice is built and written here),
        // or at an item that did not fit (`bytes` is the queue's own count, so none should:
        // the batch grows and the next run starts with it).
        var stopped: OutboundItem?
        repeat {
            batch.writeWithUnsafeMutableBytes(minimumWritableBytes: 0) { out in
                copyRun(into: out, format: format, prefix: prefix, stopped: &stopped, delivered: &delivered)
            }
            switch stopped {
            case .topicDeleted(let topic):
                batch.writeImmutableBuffer(wire.notice(.topicDeleted(topic.name)))
                stopped = nil
            case .publication(let publication):
                batch.reserveCapacity(minimumWritableBytes: publication.content.frames.bytes(format).count + perItem)
            case .frame(let frame):
                batch.reserveCapacity(minimumWritableBytes: frame.bytes.readableBytes)
            case nil:
                break
            }
        } while stopped != nil || !pending.isEmpty
        writer.write(batch)
        BatchBuffer.keep(batch)
        return delivered
    }

    /// Copies events and replies into `out`, the one in `stopped` first, then from `pending`,
    /// until the queue is empty, a deletion comes or an item does not fit (left in `stopped`);
    /// returns the bytes written. Events are copied from where their frame's bytes lie.
    private func copyRun(
        into out: UnsafeMutableRawBufferPointer, format: Int, prefix: ByteBuffer?, stopped: inout OutboundItem?, delivered: inout Int
    ) -> Int {
        var offset = 0
        func fits(_ count: Int) -> Bool { out.count - offset >= count }
        func put(_ bytes: UnsafeRawBufferPointer) {
            guard bytes.count > 0, let source = bytes.baseAddress else { return }
            (out.baseAddress! + offset).copyMemory(from: source, byteCount: bytes.count)
            offset += bytes.count
        }
        while let item = stopped.take() ?? pending.popFirst() {
            switch consume item {
            case .publication(let publication):
                let frame = publication.content.frames.bytes(format)
                if let prefix {
                    guard fits(WebSocketFraming.maxHeaderSize + prefix.readableBytes + frame.count) else {
                        stopped = .publication(publication)
                        return offset
                    }
                    offset += WebSocketFraming.writeHeader(
                        first: WebSocketFraming.text, length: prefix.readableBytes + frame.count,
                        to: UnsafeMutableRawBufferPointer(rebasing: out[offset...])
                    )
                    prefix.withUnsafeReadableBytes(put)
                } else if !fits(frame.count) {
                    stopped = .publication(publication)
                    return offset
                }
                put(frame)
                delivered += 1
            case .frame(let frame):
                guard fits(frame.bytes.readableBytes) else {
                    stopped = .frame(frame)
                    return offset
                }
                frame.bytes.withUnsafeReadableBytes(put)
            case let deletion:
                stopped = deletion
                return offset
            }
        }
        return offset
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable && waitingForWritability {
            waitingForWritability = false
            drain()
        }
        context.fireChannelWritabilityChanged()
    }

    /// Tells the client about drops at most once a second (SPEC 2.4).
    private func noteDrops(_ count: Int) {
        droppedUnreported += count
        let now = NIODeadline.now()
        let due = lastDropNotice + .seconds(1)
        if now >= due {
            writer.write(wire.notice(.messagesDropped(droppedUnreported)))
            droppedUnreported = 0
            lastDropNotice = now
        } else if dropNoticeTimer == nil {
            let loop = NIOLoopBound(self, eventLoop: context.eventLoop)
            dropNoticeTimer = context.eventLoop.scheduleTask(deadline: due) {
                let session = loop.value
                session.dropNoticeTimer = nil
                guard session.droppedUnreported > 0, session.phase == .open else { return }
                session.noteDrops(0)
                session.writer.flush()
            }
        }
    }

    // MARK: closing

    private func slowConsumer() {
        guard phase == .open || phase == .shuttingDown else { return }
        let error = PubSubError(.slowConsumer, "outbound queue overflowed: the client does not read fast enough")
        writer.write(wire.notice(.error(error)))
        close(code: .policyViolation, reason: "slow consumer")
    }

    /// Sends a close frame, then closes the TCP connection when the client answers, or
    /// `closeHandshakeSeconds` after the frame reached the socket (at most `closeHardLimitSeconds`).
    private func close(code: WebSocketErrorCode, reason: String) {
        guard phase == .open || phase == .shuttingDown else { return }
        let shuttingDown = phase == .shuttingDown
        // Closing before the held batch is published: its replies, which go nowhere, cannot
        // overflow the queue into a second close.
        phase = .closing
        // What the client published before the close is published.
        publishBatched()
        state.broker.unsubscribeAll(subscriber)
        subscriber.close()
        let channel = context.channel
        let eventLoop = context.eventLoop
        let loop = NIOLoopBound(self, eventLoop: eventLoop)
        if !shuttingDown {  // during shutdown the grace timer is the hard limit
            closeTimer = eventLoop.scheduleTask(in: .seconds(Self.closeHardLimitSeconds)) { channel.close(promise: nil) }
        }
        let written = eventLoop.makePromise(of: Void.self)
        written.futureResult.whenComplete { _ in
            loop.value.handshakeTimer = eventLoop.scheduleTask(in: .seconds(Self.closeHandshakeSeconds)) {
                channel.close(promise: nil)
            }
        }
        writer.writeAndFlush(WebSocketFraming.closeFrame(code: UInt16(webSocketErrorCode: code), reason: reason), promise: written)
    }

    static let closeHandshakeSeconds: Int64 = 2
    static let closeHardLimitSeconds: Int64 = 10

    /// Graceful shutdown: no new events, tell the client, flush what is queued, close with 1001.
    private func shutDown() {
        guard phase == .open else { return }
        phase = .shuttingDown
        state.broker.unsubscribeAll(subscriber)
        subscriber.enqueue(.frame(wire.notice(.serverShutdown)))
        let grace = TimeAmount.nanoseconds(Int64(state.configuration.shutdownGraceSeconds * 1e9))
        let channel = context.channel
        closeTimer = context.eventLoop.scheduleTask(in: grace) {
            channel.close(promise: nil)
        }
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
    init(_ session: WebSocketSession) { self.session = session }
}
