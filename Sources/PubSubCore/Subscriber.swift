import DequeModule
import NIOConcurrencyHelpers
import NIOCore

/// An entry of a connection's outbound queue.
public enum OutboundItem: Sendable {
    /// A live or replayed event, with the frame of the subscriber's wire format.
    case publication(Publication, frame: ByteBuffer)
    /// A reply or notice already encoded by the session (ack, error, pong, info). Never dropped.
    case frame(ByteBuffer)
    /// The topic was deleted; the session forgets it and tells its client.
    case topicDeleted(String)
}

/// One connection as the broker sees it: a bounded outbound queue that publishers push into and
/// the connection's writer drains, plus the set of topics it is subscribed to.
///
///     let subscriber = Subscriber(clientID: "c-1", format: 0, limits: QueueLimits(), counters: counters) { wakeWriter() }
///     try broker.subscribe(subscriber, topic: "orders", replay: .none) { receipt in ackFrame(receipt) }
///
/// Pushing never blocks and never waits for the socket: when the queue is full the
/// configured ``BackpressurePolicy`` applies. `wake` is called when the queue goes from
/// empty to non-empty (once until the writer next drains), from the pushing thread.
public final class Subscriber: @unchecked Sendable {
    public let clientID: String
    /// Wire-format slot into ``Publication/frames``.
    public let format: Int

    private let lock = NIOLock()
    private var queue = Deque<OutboundItem>()
    private var queuedBytes = 0
    private let limits: QueueLimits
    private let counters: BrokerCounters
    private let wake: @Sendable () -> Void
    private var wakePending = false
    private var overflowed = false
    private var closed = false
    private var droppedSinceNotice = 0
    /// Topics this subscriber is in, so closing a connection removes every subscription at once.
    private var topics: [ObjectIdentifier: Topic] = [:]

    public init(clientID: String, format: Int, limits: QueueLimits, counters: BrokerCounters, wake: @escaping @Sendable () -> Void) {
        self.clientID = clientID
        self.format = format
        self.limits = limits
        self.counters = counters
        self.wake = wake
    }

    // MARK: publisher side (called under the topic's lock)

    enum Offer {
        case accepted
        /// Accepted, after evicting `evicted` older publications (drop-oldest).
        case acceptedEvicting(Int)
        /// Not queued (drop-newest, or a queue that has overflowed or closed).
        case dropped
    }

    func offer(_ publication: Publication, frame: ByteBuffer) -> Offer {
        let size = frame.readableBytes
        var shouldWake = false
        let result: Offer = lock.withLock {
            if closed || overflowed { return .dropped }
            var evicted = 0
            while queue.count >= limits.maxMessages || (queuedBytes + size > limits.maxBytes && !queue.isEmpty) {
                switch limits.policy {
                case .dropNewest:
                    droppedSinceNotice += 1
                    shouldWake = markWakeLocked()
                    publication.topicCounters.dropped.wrappingIncrement(ordering: .relaxed)
                    counters.dropped.wrappingIncrement(ordering: .relaxed)
                    return .dropped
                case .disconnect:
                    overflowed = true
                    queue.removeAll()
                    queuedBytes = 0
                    // Wake even if a drain is pending: the writer may be parked on an unwritable socket.
                    wakePending = true
                    shouldWake = true
                    publication.topicCounters.dropped.wrappingIncrement(ordering: .relaxed)
                    counters.dropped.wrappingIncrement(ordering: .relaxed)
                    return .dropped
                case .dropOldest:
                    guard evictOldestPublicationLocked() else {
                        // Only replies are queued: they are never dropped, so the new event is.
                        droppedSinceNotice += 1
                        shouldWake = markWakeLocked()
                        publication.topicCounters.dropped.wrappingIncrement(ordering: .relaxed)
                        counters.dropped.wrappingIncrement(ordering: .relaxed)
                        return .dropped
                    }
                    evicted += 1
                }
            }
            queue.append(.publication(publication, frame: frame))
            queuedBytes += size
            shouldWake = markWakeLocked()
            return evicted == 0 ? .accepted : .acceptedEvicting(evicted)
        }
        if shouldWake { wake() }
        return result
    }

    private func evictOldestPublicationLocked() -> Bool {
        guard let index = queue.firstIndex(where: { if case .publication = $0 { true } else { false } }) else {
            return false
        }
        guard case .publication(let old, let frame) = queue.remove(at: index) else { return false }
        queuedBytes -= frame.readableBytes
        droppedSinceNotice += 1
        old.topicCounters.dropped.wrappingIncrement(ordering: .relaxed)
        counters.dropped.wrappingIncrement(ordering: .relaxed)
        return true
    }

    /// Returns true when the caller must call `wake` (outside the lock).
    private func markWakeLocked() -> Bool {
        if wakePending { return false }
        wakePending = true
        return true
    }

    // MARK: session side

    /// Queues a reply, a notice or a replayed event. It is never dropped on entry; its bytes
    /// count against the limit for later events, so a client flooding requests without reading
    /// pushes events out first, and a replay is bounded by the topic's history size.
    public func enqueue(_ item: OutboundItem) {
        var shouldWake = false
        lock.withLock {
            guard !closed else { return }
            switch item {
            case .frame(let buffer), .publication(_, let buffer): queuedBytes += buffer.readableBytes
            case .topicDeleted: break
            }
            queue.append(item)
            shouldWake = markWakeLocked()
        }
        if shouldWake { wake() }
    }

    /// What the writer takes out of the queue in one go.
    public struct Batch {
        /// Events dropped since the last batch (to tell the client, at most once a second).
        public var dropped: Int
        /// The disconnect policy fired: send SLOW_CONSUMER and close with 1008.
        public var overflowed: Bool
    }

    /// Moves every queued item into `items` (which the writer reuses between drains).
    public func drain(into items: inout Deque<OutboundItem>) -> Batch {
        lock.withLock {
            wakePending = false
            swap(&items, &queue)
            queuedBytes = 0
            let batch = Batch(dropped: droppedSinceNotice, overflowed: overflowed)
            droppedSinceNotice = 0
            return batch
        }
    }

    /// Stops accepting anything; what is queued is discarded.
    public func close() {
        lock.withLock {
            closed = true
            queue.removeAll()
            queuedBytes = 0
        }
    }

    /// The disconnect policy fired: the connection must be closed as a slow consumer.
    public var hasOverflowed: Bool { lock.withLock { overflowed } }

    // MARK: subscriptions (lock order: topic, then subscriber)

    func didJoin(_ topic: Topic) {
        lock.withLock { _ = topics.updateValue(topic, forKey: ObjectIdentifier(topic)) }
    }

    func didLeave(_ topic: Topic) {
        lock.withLock { _ = topics.removeValue(forKey: ObjectIdentifier(topic)) }
    }

    func joinedTopics() -> [Topic] {
        lock.withLock { Array(topics.values) }
    }

    /// Names of the topics this subscriber is in.
    public var topicNames: [String] {
        joinedTopics().map(\.name)
    }
}
