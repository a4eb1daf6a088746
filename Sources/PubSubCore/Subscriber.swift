import Synchronization

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
    /// Everything publishers and the writer share, behind a lock stored inline in this object:
    /// fan-out to many subscribers touches one object per subscriber, not a separate lock too.
    private struct State: ~Copyable {
        var queue = OutboundQueue()
        var queuedBytes = 0
        var wakePending = false
        var overflowed = false
        var closed = false
        var droppedSinceNotice = 0
        /// Topics this subscriber is in, so closing a connection removes every subscription at once.
        var topics: [ObjectIdentifier: Topic] = [:]

        /// Returns true when the caller must call `wake` (outside the lock).
        mutating func markWake() -> Bool {
            if wakePending { return false }
            wakePending = true
            return true
        }
    }

    // Stored in the order a publisher's `offer` reads them, so a fan-out to subscribers whose
    // objects are out of cache misses on as few lines per delivery as possible.
    private let state = Mutex(State())
    private let limits: QueueLimits
    /// Wire-format slot into ``Publication/frames``.
    public let format: Int
    private let counters: BrokerCounters
    private let wake: @Sendable () -> Void
    public let clientID: String

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

    /// `size`: the bytes of the publication's frame in this subscriber's format.
    func offer(_ publication: Publication, size: Int) -> Offer {
        let limits = self.limits
        let counters = self.counters
        let format = self.format
        var shouldWake = false
        let result: Offer = state.withLock { state in
            Self.offer(publication, size: size, to: &state, limits: limits, format: format, counters: counters, shouldWake: &shouldWake)
        }
        if shouldWake { wake() }
        return result
    }

    /// Offers a publish batch (consecutive publications of one topic), oldest first, under one
    /// lock: with many subscribers each one's object and ring slots are out of cache, and one
    /// visit per batch instead of one per message pays for that once. What each offer did is
    /// added to its index in `delivered` (1 when queued) and `dropped` (refused or evicted).
    func offer(
        _ publications: UnsafeBufferPointer<Publication>, delivered: UnsafeMutableBufferPointer<Int>, dropped: UnsafeMutableBufferPointer<Int>
    ) {
        let limits = self.limits
        let counters = self.counters
        let format = self.format
        var shouldWake = false
        state.withLock { state in
            for index in publications.indices {
                let publication = publications[index]
                let size = publication.content.frames.bytes(format).count
                switch Self.offer(publication, size: size, to: &state, limits: limits, format: format, counters: counters, shouldWake: &shouldWake) {
                case .accepted: delivered[index] += 1
                case .acceptedEvicting(let n): delivered[index] += 1; dropped[index] += n
                case .dropped: dropped[index] += 1
                }
            }
        }
        if shouldWake { wake() }
    }

    /// One offer under the lock: the queue's limits and policy applied to `publication`.
    @inline(__always)
    private static func offer(
        _ publication: Publication, size: Int, to state: inout State, limits: QueueLimits, format: Int, counters: BrokerCounters,
        shouldWake: inout Bool
    ) -> Offer {
        if state.closed || state.overflowed { return .dropped }
        var evicted = 0
        while state.queue.count >= limits.maxMessages || (state.queuedBytes + size > limits.maxBytes && !state.queue.isEmpty) {
            switch limits.policy {
            case .dropNewest:
                state.droppedSinceNotice += 1
                if state.markWake() { shouldWake = true }
                publication.topicCounters.dropped.wrappingAdd(1, ordering: .relaxed)
                counters.dropped.wrappingAdd(1, ordering: .relaxed)
                return .dropped
            case .disconnect:
                state.overflowed = true
                state.queue.removeAll()
                state.queuedBytes = 0
                // Wake even if a drain is pending: the writer may be parked on an unwritable socket.
                state.wakePending = true
                shouldWake = true
                publication.topicCounters.dropped.wrappingAdd(1, ordering: .relaxed)
                counters.dropped.wrappingAdd(1, ordering: .relaxed)
                return .dropped
            case .dropOldest:
                guard evictOldestPublication(&state, format: format, counters: counters) else {
                    // Only replies are queued: they are never dropped, so the new event is.
                    state.droppedSinceNotice += 1
                    if state.markWake() { shouldWake = true }
                    publication.topicCounters.dropped.wrappingAdd(1, ordering: .relaxed)
                    counters.dropped.wrappingAdd(1, ordering: .relaxed)
                    return .dropped
                }
                evicted += 1
            }
        }
        state.queue.append(.publication(publication))
        state.queuedBytes += size
        if state.markWake() { shouldWake = true }
        return evicted == 0 ? .accepted : .acceptedEvicting(evicted)
    }

    private static func evictOldestPublication(_ state: inout State, format: Int, counters: BrokerCounters) -> Bool {
        guard case .publication(let old) = state.queue.removeFirstPublication() else { return false }
        state.queuedBytes -= old.content.frames.bytes(format).count
        state.droppedSinceNotice += 1
        old.topicCounters.dropped.wrappingAdd(1, ordering: .relaxed)
        counters.dropped.wrappingAdd(1, ordering: .relaxed)
        return true
    }

    // MARK: session side

    /// Queues a reply, a notice or a replayed event. It is never dropped on entry; its bytes
    /// count against the limit for later events, so a client flooding requests without reading
    /// pushes events out first, and a replay is bounded by the topic's history size.
    public func enqueue(_ item: OutboundItem) {
        let size = byteCount(of: item)
        let shouldWake = state.withLock { state -> Bool in
            guard !state.closed else { return false }
            state.queuedBytes += size
            state.queue.append(item)
            return state.markWake()
        }
        if shouldWake { wake() }
    }

    /// The bytes `item` will write in this subscriber's format.
    private func byteCount(of item: OutboundItem) -> Int {
        switch item {
        case .publication(let publication): publication.content.frames.bytes(format).count
        case .frame(let frame): frame.bytes.readableBytes
        case .topicDeleted: 0
        }
    }

    /// What the writer takes out of the queue in one go.
    public struct Batch {
        /// Events dropped since the last batch (to tell the client, at most once a second).
        public var dropped: Int
        /// The disconnect policy fired: send SLOW_CONSUMER and close with 1008.
        public var overflowed: Bool
        /// Bytes of the frames handed over, so the writer sizes its buffer without a pass over them.
        public var bytes: Int
        /// Items were left queued (the batch reached `maxBytes`): the writer drains again, and
        /// until it does no publisher wakes it.
        public var more = false
    }

    /// Moves the queued items into `items`, which must be empty (the writer reuses it between
    /// drains, popping everything it took): all of them, or, when they hold more than
    /// `maxBytes`, the oldest up to the first that reaches `maxBytes` (at least one). What is
    /// left stays under the queue's limits and policy, so a socket that takes little at a time
    /// holds the rest as shared publications here rather than as copies in its write buffer.
    public func drain(into items: inout OutboundQueue, maxBytes: Int = .max) -> Batch {
        precondition(items.isEmpty, "drain(into:) swaps queues: what is left in `items` would be queued again")
        return state.withLock { state in
            var batch = Batch(dropped: state.droppedSinceNotice, overflowed: state.overflowed, bytes: state.queuedBytes)
            state.droppedSinceNotice = 0
            guard state.queuedBytes > maxBytes else {
                state.wakePending = false
                state.queue.swapContents(with: &items)
                state.queuedBytes = 0
                return batch
            }
            var moved = 0
            while moved < maxBytes, let item = state.queue.popFirst() {
                moved += byteCount(of: item)
                items.append(item)
            }
            state.queuedBytes -= moved
            batch.bytes = moved
            batch.more = !state.queue.isEmpty
            // Left empty after all (only frames of no bytes remained): wake as for a full drain.
            if !batch.more { state.wakePending = false }
            return batch
        }
    }

    /// Stops accepting anything; what is queued is discarded.
    public func close() {
        state.withLock { state in
            state.closed = true
            state.queue.removeAll()
            state.queuedBytes = 0
        }
    }

    /// The disconnect policy fired: the connection must be closed as a slow consumer.
    public var hasOverflowed: Bool { state.withLock { $0.overflowed } }

    // MARK: subscriptions (lock order: topic, then subscriber)

    func didJoin(_ topic: Topic) {
        state.withLock { _ = $0.topics.updateValue(topic, forKey: ObjectIdentifier(topic)) }
    }

    func didLeave(_ topic: Topic) {
        state.withLock { _ = $0.topics.removeValue(forKey: ObjectIdentifier(topic)) }
    }

    func joinedTopics() -> [Topic] {
        state.withLock { Array($0.topics.values) }
    }

    /// Names of the topics this subscriber is in.
    public var topicNames: [String] {
        joinedTopics().map(\.name)
    }
}
