import NIOCore
import Synchronization

/// This node's side of one topic: its local subscribers, the wire formats they read, and the
/// fan-out of the publications the engine hands it (it is the topic's ``TopicSink``).
///
/// Everything that orders events for a subscriber happens under one lock: the fan-out of a
/// batch, a subscription's move from joining to live, and the deletion. While a subscriber's
/// replay is read from the engine, the live publications that arrive are held for it; it goes
/// live with its ack, then the replay, then those held ones that come after the replay's
/// position: no gap and no duplicate, whichever engine serves the history.
public final class HubTopic: TopicSink, @unchecked Sendable {
    public let name: String
    /// Weak: an engine may outlive the hub that subscribed it (tests let go of hubs).
    private(set) weak var hub: Hub?
    private let offersPerLock: Int
    private let encoders: [any PublicationEncoder]

    /// Guards everything below.
    private let lock = Mutex(())
    private var subscribers: [Subscriber] = []
    private var slots: [ObjectIdentifier: Int] = [:]
    /// Subscribers whose replay is being read, with the live publications held for them.
    private var joining: [ObjectIdentifier: Joiner] = [:]
    /// Subscribers per wire format (live and joining), so only formats somebody reads are encoded.
    private var formatCounts: [Int]
    /// Where the encoders write this topic's frames.
    private var arena = FrameArena()
    /// Deleted by the engine: no longer served (the hub makes a new one for new joins).
    private var defunct = false
    /// The engine's answer to this node's subscription; joins read history after it.
    private var subscription: BrokerAnswer<Void> = .success(())
    /// Live subscribers, read without the lock by the engine to size its batches.
    private let liveCount = Atomic<Int>(0)
    /// The last seq the engine handed over.
    private var deliveredSeq: UInt64 = 0
    /// The engine's counters of the topic, as of its last delivery (for its latency).
    private var counters: TopicCounters?

    private struct Joiner {
        let subscriber: Subscriber
        var held: [Publication] = []
        /// Set once its ack and replay are queued but the engine has not yet handed this node
        /// everything up to the replay's position (a networked engine's history can be ahead
        /// of its deliveries): it gets publications after that position, and goes live with
        /// the first of them.
        var acknowledgedAt: UInt64?
    }

    init(name: String, hub: Hub) {
        self.name = name
        self.hub = hub
        self.encoders = hub.encoders
        self.offersPerLock = hub.offersPerLock
        self.formatCounts = Array(repeating: 0, count: encoders.count)
    }

    deinit {
        // Its subscribers hold it unowned: they forget it before it goes (a hub let go of
        // with subscriptions in place).
        for subscriber in subscribers { subscriber.didLeave(ObjectIdentifier(self)) }
        for joiner in joining.values { joiner.subscriber.didLeave(ObjectIdentifier(self)) }
    }

    // MARK: the engine's side (the hot path)

    public var deliveryBatchLimit: Int { max(1, offersPerLock / max(1, liveCount.load(ordering: .relaxed))) }

    public func deliver(_ batch: inout PublicationBatch, counters: TopicCounters, receipts: inout [PublishReceipt]) {
        let count = batch.count
        lock.withLock(of: self) { _ in
            if counters !== self.counters { self.counters = counters }
            let mark = counters.latency.mark(subscribers: subscribers.count)
            for slot in 0..<count {
                batch.makePublication(slot, counters: counters, latencyMark: mark) { encodeFrames(&$0) }
            }
            let publications = batch.publicationBuffer
            // On the stack: what each publication's offers did.
            withUnsafeTemporaryAllocation(of: Int.self, capacity: 2 * count) { tallies in
                tallies.initialize(repeating: 0)
                let delivered = UnsafeMutableBufferPointer(rebasing: tallies[..<count])
                let dropped = UnsafeMutableBufferPointer(rebasing: tallies[count...])
                // Each subscriber takes the whole batch under one lock of its own.
                for subscriber in subscribers {
                    subscriber.offer(publications, delivered: delivered, dropped: dropped)
                }
                if !joining.isEmpty { handToJoiners(publications) }
                for slot in 0..<count {
                    receipts.append(
                        PublishReceipt(
                            topic: name, messageID: publications[slot].id, seq: publications[slot].seq, delivered: delivered[slot],
                            dropped: dropped[slot], timestampMillis: publications[slot].timestampMillis
                        )
                    )
                }
            }
            deliveredSeq = publications[count - 1].seq
        }
    }

    /// Holds `publications` for the joiners whose replay is being read; queues those after
    /// its position for a joiner already acknowledged, and moves it live. Under the lock.
    private func handToJoiners(_ publications: UnsafeBufferPointer<Publication>) {
        var caughtUp: [ObjectIdentifier] = []
        for key in joining.keys {
            guard let position = joining[key]!.acknowledgedAt else {
                joining[key]!.held.append(contentsOf: publications)
                continue
            }
            let subscriber = joining[key]!.subscriber
            for publication in publications where publication.seq > position {
                subscriber.enqueue(.publication(publication))
            }
            if publications[publications.count - 1].seq > position { caughtUp.append(key) }
        }
        for key in caughtUp {
            let joiner = joining.removeValue(forKey: key)!
            goLive(joiner.subscriber)
        }
    }

    /// The engine's subscription took effect at `position`: it hands over every publication
    /// after it (and the history has the ones up to it).
    func handedOver(upTo position: UInt64) {
        lock.withLock(of: self) { _ in deliveredSeq = max(deliveredSeq, position) }
    }

    /// Adds a joined subscriber to those the fan-out visits. Under the lock.
    private func goLive(_ subscriber: Subscriber) {
        slots[ObjectIdentifier(subscriber)] = subscribers.count
        subscribers.append(subscriber)
        liveCount.store(subscribers.count, ordering: .relaxed)
    }

    /// Encodes `content`'s frames for the formats this node's subscribers read, in slot order
    /// and into the content itself: an encoder may build on an earlier slot's frame (the
    /// compressed formats compress the plain one). The payload the publication keeps becomes a
    /// slice of the first frame that holds it verbatim, else a copy of its own: never the
    /// buffer the message arrived in, which would keep the whole read alive.
    ///
    /// Not inlined, so the content stays in one place in memory and each encoder is lent its
    /// address (inlined, the optimizer rebuilt the content on the stack before every call).
    @inline(never)
    private func encodeFrames(_ content: inout PublicationContent) {
        var compact: ByteBuffer?
        for slot in encoders.indices where formatCounts[slot] > 0 {
            let (frame, range) = Self.encode(content, with: encoders[slot], in: &arena)
            if compact == nil, let range {
                compact = frame.getSlice(at: frame.readerIndex + range.lowerBound, length: range.count)
            }
            content.frames[slot] = consume frame
        }
        switch consume compact {
        case .some(let slice): content.payload = slice
        case .none: content.payload = Publication.ownCopy(of: content.payload)
        }
    }

    /// One encoder's frame for `content` and where the payload lies in it. Generic, so the
    /// encoder's existential is opened once for both calls (on the existential, each call got
    /// a copy of the content).
    private static func encode<Encoder: PublicationEncoder>(
        _ content: borrowing PublicationContent, with encoder: Encoder, in arena: inout FrameArena
    ) -> (ByteBuffer, Range<Int>?) {
        let frame = encoder.encode(content, in: &arena)
        return (frame, encoder.payloadRange(in: frame, of: content))
    }

    public func topicDeleted() {
        lock.withLock(of: self) { _ in
            defunct = true
            // Nothing encodes here any more; a publication still queued keeps its own chunk.
            arena = FrameArena()
            for subscriber in subscribers {
                subscriber.didLeave(ObjectIdentifier(self))
                subscriber.enqueue(.topicDeleted(self))
            }
            // Their formats no longer count; joiners' still do, until their joins fail.
            for subscriber in subscribers { formatCounts[subscriber.format] -= 1 }
            // Acknowledged joiners are told as live subscribers are.
            for (key, joiner) in joining where joiner.acknowledgedAt != nil {
                joiner.subscriber.didLeave(ObjectIdentifier(self))
                joiner.subscriber.enqueue(.topicDeleted(self))
                formatCounts[joiner.subscriber.format] -= 1
                joining[key] = nil
            }
            subscribers.removeAll()
            slots.removeAll()
            liveCount.store(0, ordering: .relaxed)
        }
        // Joins still under way fail when they complete, and take it out themselves.
        hub?.retireIfUnused(self)
    }

    public func missed(_ count: Int) {
        lock.withLock(of: self) { _ in
            let notice = MissedPublications(topic: name, count: count)
            for subscriber in subscribers { subscriber.enqueue(.missed(notice)) }
            for joiner in joining.values where joiner.acknowledgedAt != nil { joiner.subscriber.enqueue(.missed(notice)) }
        }
    }

    // MARK: the hub's side

    var isDefunct: Bool { lock.withLock(of: self) { _ in defunct } }
    var isUnused: Bool { lock.withLock(of: self) { _ in subscribers.isEmpty && joining.isEmpty } }
    var subscriberCount: Int { liveCount.load(ordering: .relaxed) }
    /// Its deliveries' latency on this node over the last minute; nil before any was timed.
    var latency: LatencySummary? { lock.withLock(of: self) { _ in counters }?.latency.summary() }

    var engineSubscription: BrokerAnswer<Void> {
        get { lock.withLock(of: self) { _ in subscription } }
        set { lock.withLock(of: self) { _ in subscription = newValue } }
    }

    enum Join {
        /// Joining: its replay is to be read, then ``completeJoin(_:history:replay:ack:)``.
        case joining
        /// Already subscribed (or joining): nothing changes.
        case alreadySubscribed
    }

    /// Takes `subscriber` in as joining, unless that passes its subscription limit; `nil` when
    /// this topic is defunct (the hub makes a new one).
    func beginJoin(_ subscriber: Subscriber, counted: Bool = true) throws(PubSubError) -> Join? {
        try lock.withLock(of: self) { _ throws(PubSubError) -> Join? in
            if defunct { return nil }
            let key = ObjectIdentifier(subscriber)
            if slots[key] != nil || joining[key] != nil { return .alreadySubscribed }
            try subscriber.didJoin(self, counted: counted)
            joining[key] = Joiner(subscriber: subscriber)
            formatCounts[subscriber.format] += 1
            return .joining
        }
    }

    /// Moves a joining subscriber live: queues `ack`'s frame (a pattern's joins have none), the replay, then the publications
    /// held for it that came after the replay's position.
    func completeJoin(
        _ subscriber: Subscriber, history: History, replay: (publications: [Publication], recovered: Bool?),
        ack: ((SubscribeReceipt) -> ByteBuffer)?
    ) throws(PubSubError) -> SubscribeReceipt {
        try lock.withLock(of: self) { _ throws(PubSubError) -> SubscribeReceipt in
            let key = ObjectIdentifier(subscriber)
            guard let held = joining.removeValue(forKey: key)?.held else {
                // Left (the connection closed, or a Phoenix leave) while its replay was read.
                throw PubSubError(.badRequest, "unsubscribed from '\(name)' before the subscription completed")
            }
            guard !defunct else {
                formatCounts[subscriber.format] -= 1
                subscriber.didLeave(ObjectIdentifier(self))
                throw .topicNotFound(name)
            }
            // Live now if this node has had everything up to the replay's position; else
            // once it has (the publications up to it would be duplicates).
            let caughtUp = deliveredSeq >= history.seq
            if caughtUp {
                goLive(subscriber)
            } else {
                joining[key] = Joiner(subscriber: subscriber, acknowledgedAt: history.seq)
            }
            let receipt = SubscribeReceipt(
                topic: name, subscriberCount: subscribers.count + (caughtUp ? 0 : 1), seq: history.seq, epoch: history.epoch,
                replayed: replay.publications.count, recovered: replay.recovered
            )
            if let ack { subscriber.enqueue(.frame(ack(receipt))) }
            // Replayed events take the queue's policy, as live ones do.
            for publication in replay.publications {
                subscriber.enqueue(.publication(replayable(publication, format: subscriber.format)))
            }
            for publication in held where publication.seq > history.seq {
                subscriber.enqueue(.publication(replayable(publication, format: subscriber.format)))
            }
            return receipt
        }
    }

    /// Gives up a join whose replay could not be read.
    func abortJoin(_ subscriber: Subscriber) {
        lock.withLock(of: self) { _ in
            guard joining.removeValue(forKey: ObjectIdentifier(subscriber)) != nil else { return }
            formatCounts[subscriber.format] -= 1
            subscriber.didLeave(ObjectIdentifier(self))
        }
    }

    /// A publication with a frame for `format`: itself, or (if nobody of that format was
    /// subscribed when it was published) a copy with that frame encoded now. Replays only:
    /// live events always have it, and a shared publication's frames never change.
    private func replayable(_ publication: Publication, format: Int) -> Publication {
        if publication.frames[format] != nil { return publication }
        var frames = publication.frames
        frames[format] = encoders[format].encode(publication)
        return publication.with(frames: frames)
    }

    /// Removes `subscriber`, live or joining (idempotent); `ack` (given the count after) is
    /// queued under the lock, after every event already queued for it.
    func remove(_ subscriber: Subscriber, ack: ((Int) -> ByteBuffer)? = nil) {
        lock.withLock(of: self) { _ in
            let key = ObjectIdentifier(subscriber)
            if joining.removeValue(forKey: key) != nil {
                formatCounts[subscriber.format] -= 1
                subscriber.didLeave(ObjectIdentifier(self))
            } else if let index = slots.removeValue(forKey: key) {
                let last = subscribers.removeLast()
                if index < subscribers.count {
                    subscribers[index] = last
                    slots[ObjectIdentifier(last)] = index
                }
                formatCounts[subscriber.format] -= 1
                liveCount.store(subscribers.count, ordering: .relaxed)
                subscriber.didLeave(ObjectIdentifier(self))
            }
            if let ack { subscriber.enqueue(.frame(ack(subscribers.count))) }
        }
    }
}
