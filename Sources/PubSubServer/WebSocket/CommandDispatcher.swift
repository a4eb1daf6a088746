import NIOCore
import PubSubAuth
import PubSubCore
import PubSubProtocol

/// Runs what a connection's client asks, whatever its wire: the one place where commands
/// meet the hub and the engine. Event-loop confined, one per connection.
///
/// Replies are appended to one buffer per read and queued when the read is done (or before a
/// subscribe or unsubscribe, whose acks the hub queues itself), not one queue entry each.
/// Consecutive publishes to one topic are held and published together (a fan-out to many
/// subscribers then visits each once per batch). When the engine answers later (it asks the
/// network), the dispatcher waits: what arrives meanwhile is held, in order, and reading
/// stops until the answer is in.
final class CommandDispatcher {
    private let state: ServerState
    /// The engine, held here for the connection's life: called at +0, no retain of the shared
    /// object (a contended reference count across threads) per publish.
    private let broker: any Broker
    let subscriber: Subscriber
    /// Told when the queue overflows (close as a slow consumer) and when a wait ends.
    weak var session: WebSocketSession?

    private var replies = ByteBuffer()
    /// The engine's handle on the topic this connection last published to.
    private var publishCache = PublishCache()
    private var batch = PublishBatch()
    /// `--publish-rate`: this connection's publishes; nil when not limited.
    private var publishBucket: TokenBucket?
    /// When the current read arrived (monotonic), for the publish bucket.
    private var readClock: UInt64 = 0
    /// Requests that arrived while an answer was awaited, oldest first (at most one read's:
    /// reading stops meanwhile). A ring buffer: they are taken from the front, and one that has
    /// to wait again goes back there (an array moved every other request each time; see
    /// docs/design.md). One slot to start with, as most connections never wait.
    private var waitingRequests = CircularBuffer<WireRequest>(initialCapacity: 1)
    private(set) var isWaiting = false

    private let eventLoop: any EventLoop

    /// What this connection's credential allows; nil when authentication is off.
    private(set) var grant: Grant?
    /// What the grant allowed, per topic: checked once per connection and topic, never per
    /// delivery (bounded: past `rememberedTopics`, a topic is checked each time).
    private var mayPublish: [String: Bool] = [:]
    private var maySubscribe: [String: Bool] = [:]
    static let rememberedTopics = 1_024

    init(state: ServerState, subscriber: Subscriber, eventLoop: any EventLoop, grant: Grant? = nil) {
        self.grant = grant
        self.eventLoop = eventLoop
        self.state = state
        self.broker = state.broker
        self.subscriber = subscriber
        self.decodingLimits = DecodingLimits(maxMessageBytes: state.configuration.maxMessageBytes)
        publishBucket = state.configuration.publishLimit.map { TokenBucket($0, now: NIODeadline.now().uptimeNanoseconds) }
    }

    let decodingLimits: DecodingLimits

    // MARK: one read

    /// The messages of one read arrived together: their publications share one timestamp.
    func beginRead() {
        publishCache.now = WallClock.nowMillis()
        if publishBucket != nil { readClock = NIODeadline.now().uptimeNanoseconds }
    }

    /// Publishes what is held and queues the read's replies.
    func endRead() {
        publishHeld()
        publishCache.now = nil
        flushReplies()
    }

    func dispatch(_ request: consuming WireRequest) {
        if isWaiting {
            waitingRequests.append(request)
            return
        }
        switch consume request {
        case .command(.publish(let topic, let message, let ack), let address):
            // Outside the token's rights, or over the rate: refused and not published, its
            // error in order with the replies.
            if grant != nil, let refusal = refusal(publishingTo: topic) {
                var frame = ByteBuffer()
                address.append(.error(refusal), to: &frame)
                return dispatch(.reply(frame))
            }
            if publishBucket != nil, let refusal = takePublishToken() {
                var frame = ByteBuffer()
                address.append(.error(refusal), to: &frame)
                return dispatch(.reply(frame))
            }
            // Held with the publishes before it, unless they are to another topic.
            if !batch.isEmpty && batch.topic != topic {
                publishHeld()
                if isWaiting {
                    // First of those held: everything held so far came after it.
                    waitingRequests.prepend(.command(.publish(topic: topic, message: message, ack: ack), address))
                    return
                }
            }
            if batch.isEmpty { batch.topic = topic }
            batch.messages.append(message)
            batch.replies.append(PublishBatch.Reply(ack: ack, address: address))
            if batch.messages.count >= PublishBatch.limit { publishHeld() }
        case let other:
            // Anything else goes after the held publishes; if they wait, so does it.
            publishHeld()
            if isWaiting {
                waitingRequests.prepend(other)
                return
            }
            switch consume other {
            case .reply(let frames):
                replies.writeImmutableBuffer(frames)
            case .leaveAll(let frames):
                state.hub.unsubscribeAll(subscriber)
                replies.writeImmutableBuffer(frames)
            case .command(let command, let address):
                run(command, address)
            }
        }
        if replies.readableBytes >= Self.replyChunkBytes { flushReplies() }
    }

    /// A read that makes more replies than this queues them in pieces of about this size, each
    /// under the queue's limits, rather than as one item as large as the read makes it.
    static let replyChunkBytes = 64 * 1024

    /// Runs a command other than a publish (publishes are held, see `dispatch`).
    private func run(_ command: consuming ClientCommand, _ address: ReplyAddress) {
        switch consume command {
        case .publish:
            preconditionFailure("publishes are held by dispatch")
        case .ping:
            address.append(.pong, to: &replies)
        case .refresh(let token):
            refresh(token, address)
        case .subscribe(let topic, let replay, let presence):
            if grant != nil, let refusal = refusal(subscribingTo: topic) {
                address.append(.error(refusal), to: &replies)
                return
            }
            // The hub queues the ack itself, ahead of the replay: earlier replies go first.
            flushReplies()
            let answer = state.hub.subscribe(subscriber, topic: topic, replay: replay) { receipt in
                var frame = ByteBuffer()
                address.append(.subscribed(receipt), to: &frame)
                return frame
            }
            // Presence diffs are native frames: a Phoenix channel's subscribe leaves them out.
            guard presence, case .native = address else { return settle(answer, address) }
            let (hub, subscriber) = (state.hub, self.subscriber)
            settle(answer.then { _ in hub.watchPresence(subscriber, topic: topic, encode: NativeCodec.presenceFrame) }, address)
        case .unsubscribe(let topic):
            flushReplies()
            let answer = state.hub.unsubscribe(subscriber, topic: topic) { count in
                var frame = ByteBuffer()
                address.append(.unsubscribed(topic: topic, subscriberCount: count), to: &frame)
                return frame
            }
            settle(answer, address)
        }
    }

    /// A new token: checked (asynchronously, so the connection waits as for the engine), then
    /// it replaces the old one; a bad one is refused and the old one stays.
    private func refresh(_ token: String, _ address: ReplyAddress) {
        guard let authenticator = state.authenticator else {
            address.append(.error(.badRequest("authentication is off: there is no token to refresh")), to: &replies)
            return
        }
        wait(for: authenticator.grant(for: token, on: eventLoop)) { dispatcher, result in
            switch result {
            case .success(let grant):
                dispatcher.grant = grant
                dispatcher.mayPublish.removeAll()
                dispatcher.maySubscribe.removeAll()
                dispatcher.session?.tokenReplaced(grant)
                address.append(.refreshed(expiresAtMillis: grant.expiresAtMillis), to: &dispatcher.replies)
            case .failure(let error):
                address.append(.error(error as? PubSubError ?? PubSubError(.unauthorized, "invalid token")), to: &dispatcher.replies)
            }
        }
    }

    private func refusal(publishingTo topic: String) -> PubSubError? {
        Self.remembered(&mayPublish, topic) { grant?.mayPublish(topic) ?? true } ? nil : .forbidden("publishing to", topic)
    }

    private func refusal(subscribingTo topic: String) -> PubSubError? {
        Self.remembered(&maySubscribe, topic) { grant?.maySubscribe(topic) ?? true } ? nil : .forbidden("subscribing to", topic)
    }

    private static func remembered(_ known: inout [String: Bool], _ topic: String, _ check: () -> Bool) -> Bool {
        if let allowed = known[topic] { return allowed }
        let allowed = check()
        if known.count < rememberedTopics { known[topic] = allowed }
        return allowed
    }

    /// An answer whose success the hub has queued itself: a failure is replied here, now or
    /// when it comes.
    private func settle<Value>(_ answer: BrokerAnswer<Value>, _ address: ReplyAddress) {
        switch answer {
        case .now(.success):
            break
        case .now(.failure(let error)):
            address.append(.error(error), to: &replies)
        case .later(let future):
            wait(for: future) { dispatcher, result in
                if case .failure(let error) = result {
                    address.append(.error(PubSubError(engineFailure: error)), to: &dispatcher.replies)
                }
            }
        }
    }

    /// Takes a token from this connection's publish bucket, if it has one; the refusal if empty.
    private func takePublishToken() -> PubSubError? {
        guard var bucket = publishBucket else { return nil }
        defer { publishBucket = bucket }
        return bucket.take(now: readClock) ? nil : .rateLimited(retryAfter: bucket.secondsUntilNext(now: readClock))
    }

    /// Publishes the held batch and writes its replies (now, or when the engine answers).
    func publishHeld() {
        guard !batch.isEmpty, !isWaiting else { return }
        // Taken out whole for the call (three of its members are lent at once), storage and all.
        var held = PublishBatch()
        swap(&held, &batch)
        defer {
            held.removeAll()
            swap(&held, &batch)
        }
        switch broker.publish(topic: held.topic, messages: &held.messages, cache: &publishCache, receipts: &held.receipts) {
        case .now(let failure):
            held.encodeReplies(receipts: held.receipts, failure: failure, to: &replies)
        case .later(let future):
            let replies = held.replies
            wait(for: future) { dispatcher, result in
                var answered = PublishBatch()
                answered.replies = replies
                switch result {
                case .success(let outcome):
                    answered.encodeReplies(receipts: outcome.receipts, failure: outcome.failure, to: &dispatcher.replies)
                case .failure(let error):
                    answered.encodeReplies(receipts: [], failure: PubSubError(engineFailure: error), to: &dispatcher.replies)
                }
            }
        }
    }

    // MARK: waiting for the engine

    /// Holds everything after this until `future` completes; then `apply` writes its replies
    /// and the held requests run, in order, until the next wait.
    private func wait<Value: Sendable>(
        for future: EventLoopFuture<Value>, apply: @escaping (CommandDispatcher, Result<Value, any Error>) -> Void
    ) {
        flushReplies()
        isWaiting = true
        session?.pauseReading()
        // `apply` is not Sendable: it travels with the dispatcher, bound to its event loop.
        let loop = NIOLoopBound((dispatcher: self, apply: apply), eventLoop: eventLoop)
        future.hop(to: loop.eventLoop).whenComplete { result in
            let (dispatcher, apply) = loop.value
            apply(dispatcher, result)
            dispatcher.isWaiting = false
            dispatcher.resume()
        }
    }

    private func resume() {
        while !isWaiting, let request = waitingRequests.popFirst() {
            dispatch(request)
        }
        if isWaiting { return }
        endRead()
        session?.resumeReading()
    }

    // MARK: queueing replies

    /// Queues a control frame's answer (a WebSocket pong) ahead of what the rest of the read
    /// makes, after what was published and replied before it, and through the queue, so a
    /// client that pings without reading is bounded too.
    func answerAtOnce(_ frame: ByteBuffer) {
        publishHeld()
        flushReplies()
        queue(frame)
    }

    /// Queues this read's replies so far. A client whose unread replies pass the queue's
    /// limits is closed as a slow consumer at once.
    private func flushReplies() {
        guard replies.readableBytes > 0 else { return }
        queue(replies)
        replies.clear()  // fresh storage of the same capacity: the queue holds the old one
    }

    /// Queues frames this connection made for itself; past the queue's limits the client is
    /// closed as a slow consumer.
    private func queue(_ frames: ByteBuffer) {
        if !subscriber.enqueue(.frame(frames)) && subscriber.hasOverflowed { session?.slowConsumer() }
    }

    /// The connection is going: subscriptions end, nothing more is queued or run.
    func close() {
        publishHeld()
        waitingRequests.removeAll()
        state.hub.unsubscribeAll(subscriber)
        subscriber.close()
    }
}
