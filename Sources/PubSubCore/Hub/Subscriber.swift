import NIOCore
import Synchronization

/// One connection as the hub sees it: a bounded outbound queue that publishers push into and
/// the connection's writer drains, plus the set of topics it is subscribed to.
///
///     let subscriber = Subscriber(clientID: "c-1", format: 0, limits: QueueLimits(), counters: counters) { wakeWriter() }
///     try broker.subscribe(subscriber, topic: "orders", replay: .none) { receipt in ackFrame(receipt) }
///
/// Pushing never blocks and never waits for the socket. The queue's limits bound everything it
/// holds, events and replies alike (SPEC 2.4): when an event does not fit, the configured
/// ``BackpressurePolicy`` applies; a reply, notice or deletion is never dropped, so it evicts
/// events to fit, and when it cannot (only such items are queued, or the policy is
/// `disconnect`) the queue overflows and the connection is to be closed as a slow consumer.
/// `wake` is called when the queue goes from empty to non-empty (once until the writer next
/// drains), from the pushing thread.
public final class Subscriber: Sendable {
    /// Everything publishers and the writer share, behind a lock stored inline in this object:
    /// fan-out to many subscribers touches one object per subscriber, not a separate lock too.
    private struct State: ~Copyable {
        /// Live and replayed events, oldest first; drop-oldest evicts from the front.
        var events = OutboundQueue()
        /// Replies, notices and deletions, each stamped with how many events had been appended
        /// before it: it is written once all of those have left `events` (written or evicted).
        /// Kept apart from the events so that evicting the oldest event is one step, never a
        /// search past replies a client leaves unread.
        var control = ControlQueue()
        var eventsAppended: UInt64 = 0
        var eventsRemoved: UInt64 = 0
        /// Bytes of everything queued, events and control items.
        var queuedBytes = 0
        var wakePending = false
        var overflowed = false
        var closed = false
        var droppedSinceNotice = 0
        /// Topics this subscriber is in (live or joining), so closing a connection removes every
        /// subscription at once. Unowned: each topic holds its subscribers, and a strong way back
        /// made a cycle that only an unsubscribe broke, so a hub let go of with subscriptions in
        /// place leaked with its topics and every queued event (found by LeakSanitizer). Not
        /// weak: a weak reference gives the topic a side table, and every retain of it on the
        /// publish path then takes the slow path. A topic takes itself out of this record when
        /// the subscriber leaves it, when it is deleted, and when it is freed.
        var topics: [ObjectIdentifier: UnownedTopic] = [:]
        /// Those of `topics` that count against the subscription limit (not a pattern's).
        var countedTopics = 0

        var count: Int { events.count + control.count }

        /// Returns true when the caller must call `wake` (outside the lock).
        mutating func markWake() -> Bool {
            if wakePending { return false }
            wakePending = true
            return true
        }

        /// The oldest item in write order: a control item as soon as the events before it are gone.
        mutating func popFirst() -> OutboundItem? {
            if let first = control.first, first.after <= eventsRemoved { return control.popFirst()?.item }
            if let event = events.popFirst() {
                eventsRemoved += 1
                return event
            }
            return control.popFirst()?.item
        }

        /// Empties both queues (closed, or overflowed and to be closed).
        mutating func removeAll() {
            eventsRemoved += UInt64(events.count)
            events.removeAll()
            control.removeAll()
            queuedBytes = 0
        }
    }

    private struct UnownedTopic {
        unowned let topic: HubTopic
        let counted: Bool
    }

    private struct ControlEntry {
        /// How many events had been appended before this item.
        let after: UInt64
        let item: OutboundItem
    }

    /// Control items in order: an array read from `head`. Its storage is let go of once every
    /// item is taken, so an idle connection, whose greeting and acks were written long ago,
    /// keeps none (a ring would keep its capacity on every idle connection).
    private struct ControlQueue {
        private var entries: [ControlEntry] = []
        private var head = 0

        var count: Int { entries.count - head }
        var isEmpty: Bool { head == entries.count }
        var first: ControlEntry? { isEmpty ? nil : entries[head] }

        mutating func append(_ entry: ControlEntry) {
            entries.append(entry)
        }

        mutating func popFirst() -> ControlEntry? {
            guard !isEmpty else { return nil }
            let entry = entries[head]
            head += 1
            if head == entries.count {
                removeAll()
            } else if head >= 32 && head * 2 >= entries.count {
                // A queue that is never empty sheds what was taken, a half at a time.
                entries.removeFirst(head)
                head = 0
            }
            return entry
        }

        mutating func removeAll() {
            entries = []
            head = 0
        }
    }

    // Stored in the order a publisher's `offer` reads them, so a fan-out to subscribers whose
    // objects are out of cache misses on as few lines per delivery as possible.
    private let state = Mutex(State())
    public let limits: QueueLimits
    /// Wire-format slot into ``Publication/frames``.
    public let format: Int
    private let counters: HubCounters
    private let wake: @Sendable () -> Void
    public let clientID: String
    /// Who the connection is, as presence lists show it: the token's `sub` (nil without auth).
    public let user: String?
    /// Topics this subscriber may be in at once; 0 = no limit.
    public let maxSubscriptions: Int

    public init(
        clientID: String, user: String? = nil, format: Int, limits: QueueLimits, counters: HubCounters, maxSubscriptions: Int = 0,
        wake: @escaping @Sendable () -> Void
    ) {
        self.clientID = clientID
        self.user = user
        self.format = format
        self.limits = limits
        self.counters = counters
        self.maxSubscriptions = maxSubscriptions
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
        let result: Offer = state.withLock(of: self) { state in
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
        state.withLock(of: self) { state in
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
        _ publication: Publication, size: Int, to state: inout State, limits: QueueLimits, format: Int, counters: HubCounters,
        shouldWake: inout Bool
    ) -> Offer {
        if state.closed || state.overflowed { return .dropped }
        var evicted = 0
        while state.count >= limits.maxMessages || (state.queuedBytes + size > limits.maxBytes && state.count > 0) {
            switch limits.policy {
            case .dropNewest:
                state.droppedSinceNotice += 1
                if state.markWake() { shouldWake = true }
                publication.topicCounters.dropped.wrappingAdd(1, ordering: .relaxed)
                counters.dropped.wrappingAdd(1, ordering: .relaxed)
                return .dropped
            case .disconnect:
                overflow(&state)
                shouldWake = true
                publication.topicCounters.dropped.wrappingAdd(1, ordering: .relaxed)
                counters.dropped.wrappingAdd(1, ordering: .relaxed)
                return .dropped
            case .dropOldest:
                guard evictOldestEvent(&state, format: format, counters: counters) else {
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
        state.events.append(.publication(publication))
        state.eventsAppended += 1
        state.queuedBytes += size
        if state.markWake() { shouldWake = true }
        return evicted == 0 ? .accepted : .acceptedEvicting(evicted)
    }

    /// Drops the oldest queued event, counted as a drop; false when no event is queued.
    private static func evictOldestEvent(_ state: inout State, format: Int, counters: HubCounters) -> Bool {
        guard case .publication(let old) = state.events.popFirst() else { return false }
        state.eventsRemoved += 1
        state.queuedBytes -= old.content.frames.bytes(format).count
        state.droppedSinceNotice += 1
        old.topicCounters.dropped.wrappingAdd(1, ordering: .relaxed)
        counters.dropped.wrappingAdd(1, ordering: .relaxed)
        return true
    }

    /// The connection is to be closed as a slow consumer: nothing queued will be written. The
    /// caller wakes the writer even if a drain is pending (it may be parked on an unwritable
    /// socket).
    private static func overflow(_ state: inout State) {
        state.overflowed = true
        state.removeAll()
        state.wakePending = true
    }

    // MARK: session side

    /// Queues a reply, a notice or a deletion (`.frame`, `.topicDeleted`), or a replayed event
    /// (`.publication`). Events take the backpressure policy, as live ones do. The others are
    /// never dropped: the oldest queued events are evicted to make room (counted as drops), and
    /// when that is not enough, or the policy is `disconnect`, the queue overflows and the
    /// connection is to be closed as a slow consumer. Returns false when the item was not
    /// queued (dropped, overflowed or closed).
    @discardableResult
    public func enqueue(_ item: OutboundItem) -> Bool {
        let size = byteCount(of: item)
        let limits = self.limits
        let counters = self.counters
        let format = self.format
        var shouldWake = false
        let queued = state.withLock(of: self) { state -> Bool in
            if case .publication(let publication) = item {
                let offer = Self.offer(publication, size: size, to: &state, limits: limits, format: format, counters: counters, shouldWake: &shouldWake)
                if case .dropped = offer { return false }
                return true
            }
            guard !state.closed, !state.overflowed else { return false }
            while state.count >= limits.maxMessages || (state.queuedBytes + size > limits.maxBytes && state.count > 0) {
                if limits.policy != .disconnect, Self.evictOldestEvent(&state, format: format, counters: counters) { continue }
                Self.overflow(&state)
                shouldWake = true
                return false
            }
            state.control.append(ControlEntry(after: state.eventsAppended, item: item))
            state.queuedBytes += size
            if state.markWake() { shouldWake = true }
            return true
        }
        if shouldWake { wake() }
        return queued
    }

    /// The bytes `item` will write in this subscriber's format.
    private func byteCount(of item: OutboundItem) -> Int {
        switch item {
        case .publication(let publication): publication.content.frames.bytes(format).count
        case .frame(let frame): frame.bytes.readableBytes
        case .topicDeleted, .missed: 0
        }
    }

    /// What the writer takes out of the queue in one go.
    public struct Batch {
        /// Events dropped since the last batch (to tell the client, at most once a second).
        public var dropped: Int
        /// The queue overflowed: send SLOW_CONSUMER and close with 1008.
        public var overflowed: Bool
        /// Bytes of the frames handed over, so the writer sizes its buffer without a pass over them.
        public var bytes: Int
        /// Items were left queued (the batch reached `maxBytes`): the writer drains again, and
        /// until it does no publisher wakes it.
        public var more = false
    }

    /// Moves the queued items into `items`, in write order, which must be empty (the writer
    /// reuses it between drains, popping everything it took): all of them, or, when they hold
    /// more than `maxBytes`, the oldest up to the first that reaches `maxBytes` (at least one).
    /// What is left stays under the queue's limits and policy, so a socket that takes little at
    /// a time holds the rest as shared publications here rather than as copies in its write
    /// buffer.
    public func drain(into items: inout OutboundQueue, maxBytes: Int = .max) -> Batch {
        precondition(items.isEmpty, "drain(into:) swaps queues: what is left in `items` would be queued again")
        return state.withLock(of: self) { state in
            var batch = Batch(dropped: state.droppedSinceNotice, overflowed: state.overflowed, bytes: state.queuedBytes)
            state.droppedSinceNotice = 0
            if state.control.isEmpty && state.queuedBytes <= maxBytes {
                // Only events, and all of them: the ring changes hands whole.
                state.wakePending = false
                state.events.swapContents(with: &items)
                state.eventsRemoved += UInt64(items.count)
                state.queuedBytes = 0
                return batch
            }
            var moved = 0
            while moved < maxBytes, let item = state.popFirst() {
                moved += byteCount(of: item)
                items.append(item)
            }
            state.queuedBytes -= moved
            batch.bytes = moved
            batch.more = state.count > 0
            // Left empty after all (only items of no bytes remained): wake as for a full drain.
            if !batch.more { state.wakePending = false }
            return batch
        }
    }

    /// Stops accepting anything; what is queued is discarded.
    public func close() {
        state.withLock(of: self) { state in
            state.closed = true
            state.removeAll()
        }
    }

    /// The queue overflowed: the connection must be closed as a slow consumer.
    public var hasOverflowed: Bool { state.withLock(of: self) { $0.overflowed } }

    // MARK: subscriptions (lock order: topic, then subscriber)

    /// Records `topic` among this subscriber's, unless that would pass `maxSubscriptions`.
    func didJoin(_ topic: HubTopic, counted: Bool = true) throws(PubSubError) {
        let maximum = maxSubscriptions
        let joined = state.withLock(of: self) { state -> Bool in
            if counted && maximum > 0 && state.countedTopics >= maximum { return false }
            state.topics[ObjectIdentifier(topic)] = UnownedTopic(topic: topic, counted: counted)
            if counted { state.countedTopics += 1 }
            return true
        }
        guard joined else {
            throw .limitExceeded(
                "max_subscriptions_per_connection", maximum: maximum, "this connection is subscribed to its limit of \(maximum) topics"
            )
        }
    }

    func didLeave(_ topic: ObjectIdentifier) {
        state.withLock(of: self) { state in
            if state.topics.removeValue(forKey: topic)?.counted == true { state.countedTopics -= 1 }
        }
    }

    func joinedTopics() -> [HubTopic] {
        state.withLock(of: self) { $0.topics.values.map(\.topic) }
    }

    /// Names of the topics this subscriber is in.
    public var topicNames: [String] {
        joinedTopics().map(\.name)
    }
}
