import Hummingbird
import Logging
import NIOCore
import PubSubAuth
import PubSubCore
import PubSubProtocol
import Synchronization

/// One `GET /api/topics/{name}/events` stream (SPEC 9): a hub ``Subscriber`` like a WebSocket
/// connection's (the configured queue limits and policy, the same counters, counted as a
/// connection and a subscription) whose queue one task drains into the response body.
///
/// Writes to the body wait while the client does not read (the HTTP channel's writability), and
/// meanwhile the queue's limits and policy apply: drop-oldest and drop-newest leave a drop
/// notice (`event: info`) for when the client reads again; disconnect ends the stream with
/// `SLOW_CONSUMER` and the connection is cut off if the client never takes that in.
final class SSEStream: Sendable {
    let subscriber: Subscriber
    let clientID: String
    private let topic: String
    private let state: ServerState
    private let channel: any Channel
    /// Its place under the connection limits, given back when the stream ends.
    private let place: ConnectionLimits.Place?
    private let signal = SSESignal()
    private let logger: Logger
    private let openedAt = NIODeadline.now()
    private let timers = Mutex(Timers())

    private struct Timers {
        var heartbeat: RepeatedTask?
        var expiry: Scheduled<Void>?
        var dropNotice: Scheduled<Void>?
        /// Closes the connection of a stream that cannot end by itself (a client that does not
        /// read its slow-consumer notice, or its last events during shutdown).
        var cutOff: Scheduled<Void>?
        var cutOffDeadline = NIODeadline.distantFuture
        var ended = false
    }

    /// How the subscriber's wake reaches the stream without keeping it alive (the stream holds
    /// the subscriber, whose wake would otherwise hold the stream back).
    private final class WakeTarget: Sendable {
        private struct Weak { weak var stream: SSEStream? }
        private let target = Mutex(Weak())
        var stream: SSEStream? {
            get { target.withLock(of: self) { $0.stream } }
            set { target.withLock(of: self) { $0.stream = newValue } }
        }
    }

    init(state: ServerState, topic: String, user: String?, place: ConnectionLimits.Place?, channel: any Channel, logger: Logger) {
        self.state = state
        self.place = place
        self.topic = topic
        self.channel = channel
        self.logger = logger
        clientID = state.nextClientID()
        let target = WakeTarget()
        subscriber = Subscriber(
            clientID: clientID, user: user, format: WireFormat.native, limits: state.configuration.queue, counters: state.hub.counters
        ) {
            target.stream?.woken()
        }
        target.stream = self
        let signal = self.signal
        // A client gone is noticed when its connection closes: half-closure is allowed, so its
        // FIN closes nothing, and the write after the one its reset answers fails (within two
        // heartbeats on a quiet topic).
        channel.closeFuture.whenComplete { _ in signal.fire(.gone) }
    }

    deinit {
        // A response that was never written (the client went before its head) never ran the
        // stream: its subscription would otherwise stay in the hub. Idempotent after `end`.
        state.hub.unsubscribeAll(subscriber)
        place?.giveBack()
        subscriber.close()
    }

    /// The most a drain takes at a time: what the client has not taken stays in the queue, under
    /// its limits and policy, rather than as a copy in the channel's buffer.
    static let writeChunkBytes = 64 * 1024

    /// Writes the stream until it ends: the `subscribed` event (`ack`, the native ack frame),
    /// then events and notices as they are queued, a heartbeat comment every heartbeat.
    func run(_ writer: inout any ResponseBodyWriter, ack: ByteBuffer, grant: Grant?) async throws {
        var reason = "connection lost"
        state.connectionsCurrent.wrappingAdd(1, ordering: .relaxed)
        state.connectionsOpened.wrappingAdd(1, ordering: .relaxed)
        defer { end(reason: reason) }
        var opened = SessionLog.opened(clientID: clientID, format: WireFormat.native, remote: channel.remoteAddress, user: grant?.user)
        opened["protocol"] = "sse"
        opened["topic"] = "\(topic)"
        logger.info("connection opened", metadata: opened)
        startTimers(grant: grant)
        var first = ByteBuffer()
        SSEEvents.append(event: "subscribed", frame: ack, to: &first)
        try await writer.write(first)
        var pending = OutboundQueue()
        var drops = DropNotices()
        var dropNoticeScheduled = false
        while true {
            let reasons = await signal.next()
            if reasons.contains(.gone) { return }
            if subscriber.hasOverflowed {
                reason = "slow consumer"
                try await endAsSlowConsumer(&writer)
                return
            }
            var more = true
            var delivered = 0
            while more {
                let batch = subscriber.drain(into: &pending, maxBytes: Self.writeChunkBytes)
                more = batch.more
                var out = ByteBufferAllocator().buffer(capacity: batch.bytes + pending.count * 32 + 64)
                if let dropped = drops.record(batch.dropped) {
                    SSEEvents.appendInfo(.messagesDropped(dropped), to: &out)
                    DropNotices.log(dropped, clientID: clientID, policy: subscriber.limits.policy, to: logger)
                }
                let deleted = Self.append(&pending, to: &out, delivered: &delivered)
                if out.readableBytes > 0 { try await writer.write(out) }
                if deleted {
                    state.hub.counters.recordDelivered(delivered)
                    reason = "topic deleted"
                    try await writer.finish(nil)
                    return
                }
            }
            if delivered > 0 { state.hub.counters.recordDelivered(delivered) }
            if reasons.contains(.dropNotice) { dropNoticeScheduled = false }
            if drops.isHoldingBack && !dropNoticeScheduled {
                scheduleDropNotice(at: drops.due)
                dropNoticeScheduled = true
            }
            if reasons.contains(.heartbeat) { try await writer.write(SSEEvents.heartbeat) }
            if let (last, why) = Self.lastWords(reasons) {
                reason = why
                var out = ByteBuffer()
                SSEEvents.appendInfo(last, to: &out)
                try await writer.write(out)
                try await writer.finish(nil)
                return
            }
        }
    }

    /// The notice that ends the stream, if `reasons` hold one.
    private static func lastWords(_ reasons: SSEWakeReasons) -> (ServerMessage, reason: String)? {
        if reasons.contains(.shutdown) { return (.serverShutdown, "server shutdown") }
        if reasons.contains(.expired) { return (.error(PubSubError(.unauthorized, "token expired")), "token expired") }
        return nil
    }

    /// Events and notices from `pending` as SSE; true when the topic was deleted (its notice is
    /// the stream's last event).
    private static func append(_ pending: inout OutboundQueue, to out: inout ByteBuffer, delivered: inout Int) -> Bool {
        while let item = pending.popFirst() {
            switch item {
            case .publication(let publication):
                SSEEvents.appendMessage(publication, to: &out)
                delivered += 1
            case .frame(let frame):
                // The hub queues the subscribe's ack here; the stream wrote it first already.
                if frame.bytes.readableBytes > 0 { SSEEvents.append(event: "info", frame: frame.bytes, to: &out) }
            case .missed(let missed):
                SSEEvents.appendInfo(.messagesDropped(missed.count, topic: missed.topic), to: &out)
            case .topicDeleted(let topic):
                SSEEvents.appendInfo(.topicDeleted(topic.name), to: &out)
                pending.removeAll()
                return true
            }
        }
        return false
    }

    /// The disconnect policy's end: `SLOW_CONSUMER`, then the connection is closed (SPEC 2.4).
    /// Closing at once could lose the notice still in the channel's buffer, and the response
    /// writer does not say when its bytes left: the connection goes `closeHandshakeSeconds`
    /// after the end was handed over (a client that reads has it by then, and an EventSource
    /// waits longer than that to reconnect), or at the close timeout if the client never reads.
    private func endAsSlowConsumer(_ writer: inout any ResponseBodyWriter) async throws {
        state.slowConsumerCloses.wrappingAdd(1, ordering: .relaxed)
        logger.warning("slow consumer closed", metadata: SessionLog.slowConsumer(clientID: clientID, limits: state.configuration.queue))
        cutOff(after: state.configuration.closeTimeoutSeconds)
        var out = ByteBuffer()
        SSEEvents.appendInfo(.error(PubSubError(.slowConsumer, "outbound queue overflowed: the client does not read fast enough")), to: &out)
        try await writer.write(out)
        try await writer.finish(nil)
        cutOff(after: state.configuration.closeHandshakeSeconds)
    }

    // MARK: wakes and timers (any thread)

    /// The subscriber's queue has something, or overflowed: a writer blocked on a client that
    /// does not read cannot see that, so the cut-off is armed here.
    private func woken() {
        signal.fire(.queue)
        if subscriber.hasOverflowed { cutOff(after: state.configuration.closeTimeoutSeconds) }
    }

    /// Graceful shutdown: no new events; what is queued is written, then `server_shutdown`,
    /// and the stream ends (within the shutdown grace, else the connection is cut off).
    func shutDown() {
        state.hub.unsubscribeAll(subscriber)
        signal.fire(.shutdown)
        cutOff(after: state.configuration.shutdownGraceSeconds)
    }

    private func startTimers(grant: Grant?) {
        let signal = self.signal
        let loop = channel.eventLoop
        let interval = TimeAmount.nanoseconds(Int64(state.configuration.heartbeatSeconds * 1e9))
        let heartbeat = loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in signal.fire(.heartbeat) }
        var expiry: Scheduled<Void>?
        if let expiresAt = grant?.expiresAtMillis {
            let delay = min(max(0, expiresAt - WallClock.nowMillis()), WebSocketSession.longestExpiryDelayMillis)
            expiry = loop.scheduleTask(in: .milliseconds(delay)) { signal.fire(.expired) }
        }
        timers.withLock(of: self) { timers in
            timers.heartbeat = heartbeat
            timers.expiry = expiry
        }
    }

    /// Wakes the writer at `deadline` for the drops it held back.
    private func scheduleDropNotice(at deadline: NIODeadline) {
        let signal = self.signal
        let loop = channel.eventLoop
        timers.withLock(of: self) { timers in
            guard !timers.ended else { return }
            timers.dropNotice = loop.scheduleTask(deadline: deadline) { signal.fire(.dropNotice) }
        }
    }

    /// Closes the connection `seconds` from now, unless an earlier cut-off is set.
    private func cutOff(after seconds: Double) {
        let deadline = NIODeadline.now() + .nanoseconds(Int64(seconds * 1e9))
        let channel = self.channel
        timers.withLock(of: self) { timers in
            guard deadline < timers.cutOffDeadline else { return }
            timers.cutOff?.cancel()
            timers.cutOffDeadline = deadline
            timers.cutOff = channel.eventLoop.scheduleTask(deadline: deadline) { channel.close(promise: nil) }
        }
    }

    /// The stream is over: out of the hub, timers stopped (a cut-off stays armed: the
    /// connection it guards may still hold unwritten bytes), counted as closed.
    private func end(reason: String) {
        let stopped = timers.withLock(of: self) { timers -> [Scheduled<Void>?] in
            timers.ended = true
            timers.heartbeat?.cancel()
            defer {
                timers.heartbeat = nil
                timers.expiry = nil
                timers.dropNotice = nil
            }
            return [timers.expiry, timers.dropNotice]
        }
        for timer in stopped { timer?.cancel() }
        state.hub.unsubscribeAll(subscriber)
        subscriber.close()
        place?.giveBack()
        state.connectionsCurrent.wrappingSubtract(1, ordering: .relaxed)
        logger.info("connection closed", metadata: SessionLog.closed(clientID: clientID, reason: reason, openedAt: openedAt))
    }
}
