import NIOCore
import Synchronization

/// A point-in-time view of a topic, for REST and stats.
public struct TopicSnapshot: Sendable {
    public let name: String
    public let createdAtMillis: Int64
    public let messageCount: UInt64
    public let subscriberCount: Int
    public let seq: UInt64
    public let epoch: String
    public let dropped: Int
}

/// How a subscription asks to catch up before joining the live stream (SPEC 2.1).
public enum ReplayRequest: Sendable, Equatable {
    case none
    /// Up to `n` of the newest retained messages.
    case lastN(Int)
    /// Every retained message with `seq > since`; `epoch` is the topic epoch the client last saw.
    case since(UInt64, epoch: String?)
}

/// What a subscribe did, for its `ack` frame.
public struct SubscribeReceipt: Sendable {
    public let topic: String
    public let subscriberCount: Int
    /// The topic's last seq before any replay.
    public let seq: UInt64
    public let epoch: String
    public let replayed: Int
    /// Set for `since` requests: false when the replay could not close the gap.
    public let recovered: Bool?
}

/// What a publish did, for its `ack` frame or REST response.
public struct PublishReceipt: Sendable {
    public let topic: String
    public let messageID: MessageID
    public let seq: UInt64
    /// Subscriber queues that took the message.
    public let delivered: Int
    /// Messages dropped by this publish: refused (drop-newest, overflow) or evicted (drop-oldest).
    public let dropped: Int
    /// When it was published (the event's `ts`), in milliseconds since 1970.
    public let timestampMillis: Int64

    /// Public for other engines (and benchmarks) to report their publishes.
    public init(topic: String, messageID: MessageID, seq: UInt64, delivered: Int, dropped: Int, timestampMillis: Int64) {
        self.topic = topic
        self.messageID = messageID
        self.seq = seq
        self.delivered = delivered
        self.dropped = dropped
        self.timestampMillis = timestampMillis
    }
}

/// One topic: sequence numbers, history, subscribers and fan-out.
///
/// Everything that orders events happens under one lock: assigning `seq`, appending to
/// history and pushing into every subscriber queue. So per-topic order holds across
/// concurrent publishers, and a subscription (with its replay) is atomic with respect to
/// publishes: no gap, no duplicate. Pushing is cheap (a queue append), never I/O.
public final class Topic: @unchecked Sendable {
    public let name: String
    public let epoch: String
    public let createdAtMillis: Int64
    let counters = TopicCounters()

    /// Guards everything below; a `Mutex` (a futex word in the object) costs less per publish
    /// than a `pthread_mutex_t` lock and unlock.
    private let lock = Mutex(())
    private var seq: UInt64 = 0
    private var history: HistoryRing
    private var subscribers: [Subscriber] = []
    private var slots: [ObjectIdentifier: Int] = [:]
    /// Subscriber count per wire format, so only formats somebody reads are encoded.
    private var formatCounts: [Int]
    private var ids = MessageIDGenerator()
    /// Where the encoders write this topic's frames.
    private var arena = FrameArena()
    private var deleted = false
    private let encoders: [any PublicationEncoder]
    private let brokerCounters: BrokerCounters

    init(name: String, historySize: Int, encoders: [any PublicationEncoder], counters: BrokerCounters, now: Int64) {
        self.name = name
        self.history = HistoryRing(capacity: historySize)
        self.encoders = encoders
        self.formatCounts = Array(repeating: 0, count: encoders.count)
        self.brokerCounters = counters
        self.createdAtMillis = now
        self.epoch = ids.shortID()
    }

    func snapshot() -> TopicSnapshot {
        lock.withLock(of: self) { _ in
            TopicSnapshot(
                name: name, createdAtMillis: createdAtMillis, messageCount: seq,
                subscriberCount: subscribers.count, seq: seq, epoch: epoch, dropped: counters.droppedCount
            )
        }
    }

    var subscriberCount: Int { lock.withLock(of: self) { _ in subscribers.count } }

    // MARK: publish (the hot path)

    /// What a publish did: published, or (the topic was deleted) the message handed back.
    enum PublishOutcome {
        case published(PublishReceipt)
        case deleted(MessageInput)
    }

    /// Consumes `input`: its payload moves into the publication's content.
    func publish(_ input: consuming MessageInput, now: Int64) -> PublishOutcome {
        // Moved into the lock's closure through an optional (a closure cannot consume it).
        var input = Optional(consume input)
        return lock.withLock(of: self) { _ in publishLocked(input.take()!, now: now) }
    }

    private func publishLocked(_ input: consuming MessageInput, now: Int64) -> PublishOutcome {
        guard !deleted else { return .deleted(input) }
        let publication = nextPublication(&input, now: now)

        var delivered = 0
        var dropped = 0
        // The array holds every subscriber for the whole loop: each is used at +0, with no
        // retain and release of its object (which, with many subscribers, is out of cache and
        // would be written to just for that). Reached in place (a mutating access, though
        // nothing is changed): a read would copy the array, retaining and releasing it.
        subscribers.withUnsafeMutableBufferPointer { subscribers in
            for index in subscribers.indices {
                let offer = Unmanaged.passUnretained(subscribers[index])._withUnsafeGuaranteedRef { subscriber in
                    subscriber.offer(publication, size: publication.content.frames.bytes(subscriber.format).count)
                }
                switch offer {
                case .accepted: delivered += 1
                case .acceptedEvicting(let n): delivered += 1; dropped += n
                case .dropped: dropped += 1
                }
            }
        }
        let receipt = PublishReceipt(topic: name, messageID: publication.id, seq: seq, delivered: delivered, dropped: dropped, timestampMillis: now)
        // Last, so the history takes this reference instead of a new one.
        history.append(consume publication)
        return .published(receipt)
    }

    /// The next seq's publication of `input`, its frames encoded; the payload moves out of
    /// `input` into it.
    @inline(__always)
    private func nextPublication(_ input: inout MessageInput, now: Int64) -> Publication {
        seq += 1
        let id = input.id.map(MessageID.init) ?? ids.uuid()
        var content = PublicationContent(topic: name, seq: seq, id: id, payload: input.takePayload(), timestampMillis: now)
        encodeFrames(&content)
        return Publication(content, topicCounters: counters)
    }

    /// The most offers one hold of the lock makes for a batch: a batch to many subscribers is
    /// published a few messages at a time (at 10,000 subscribers, 6), so that subscribes and
    /// other publishers of the topic wait a couple of milliseconds at most, not for 64 x 10,000.
    static let offersPerLock = 65_536

    /// Publishes `inputs[from...]` in order, as consecutive seqs, appending one receipt each to
    /// `receipts`, and returns how many it published: all of them, or (the topic was deleted)
    /// fewer, the rest left untouched. Each hold of the lock publishes as many messages as keep
    /// its offers within `offersPerLock`, and visits each subscriber once for all of them
    /// (``Subscriber/offer(_:delivered:dropped:)``) rather than once per message.
    func publish(
        _ inputs: inout [MessageInput], from start: Int = 0, now: Int64, receipts: inout [PublishReceipt],
        offersPerLock: Int = Topic.offersPerLock
    ) -> Int {
        var next = start
        while next < inputs.count {
            let published = lock.withLock(of: self) { _ -> Int in
                guard !deleted else { return 0 }
                let count = min(inputs.count - next, max(1, offersPerLock / max(1, subscribers.count)))
                publishLocked(&inputs, next..<(next + count), now: now, receipts: &receipts)
                return count
            }
            if published == 0 { break }
            next += published
        }
        return next - start
    }

    private func publishLocked(_ inputs: inout [MessageInput], _ range: Range<Int>, now: Int64, receipts: inout [PublishReceipt]) {
        let count = range.count
        // On the stack: the batch's publications, then what each one's offers did.
        withUnsafeTemporaryAllocation(of: Publication.self, capacity: count) { publications in
            for (slot, index) in range.enumerated() {
                (publications.baseAddress! + slot).initialize(to: nextPublication(&inputs[index], now: now))
            }
            let batch = UnsafeBufferPointer(publications)
            withUnsafeTemporaryAllocation(of: Int.self, capacity: 2 * count) { tallies in
                tallies.initialize(repeating: 0)
                let delivered = UnsafeMutableBufferPointer(rebasing: tallies[..<count])
                let dropped = UnsafeMutableBufferPointer(rebasing: tallies[count...])
                // At +0 and in place, as in the single publish above.
                subscribers.withUnsafeMutableBufferPointer { subscribers in
                    for index in subscribers.indices {
                        Unmanaged.passUnretained(subscribers[index])._withUnsafeGuaranteedRef { subscriber in
                            subscriber.offer(batch, delivered: delivered, dropped: dropped)
                        }
                    }
                }
                for slot in 0..<count {
                    receipts.append(
                        PublishReceipt(
                            topic: name, messageID: batch[slot].id, seq: batch[slot].seq, delivered: delivered[slot],
                            dropped: dropped[slot], timestampMillis: now
                        )
                    )
                }
            }
            // Moved into the history: it takes each publication's first reference.
            for slot in 0..<count { history.append((publications.baseAddress! + slot).move()) }
        }
    }

    /// Encodes `content`'s frames, in slot order and into the content itself: an encoder may
    /// build on an earlier slot's frame (the compressed formats compress the plain one). The
    /// payload the publication keeps becomes a slice of the first frame that holds it verbatim.
    ///
    /// Apart from `publish` and not inlined, so the content stays in one place in memory and
    /// each encoder is lent its address: inlined, the optimizer kept the content's 280 bytes
    /// in scattered locals and rebuilt it on the stack before every encoder call.
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
        case .none: content.payload = ownCopy(of: content.payload)
        }
    }

    /// One encoder's frame for `content` and where the payload lies in it. Generic, so the
    /// encoder's existential is opened once for both calls: called on the existential, each
    /// call got a copy of the content's 280 bytes.
    private static func encode<Encoder: PublicationEncoder>(
        _ content: borrowing PublicationContent, with encoder: Encoder, in arena: inout FrameArena
    ) -> (ByteBuffer, Range<Int>?) {
        let frame = encoder.encode(content, in: &arena)
        return (frame, encoder.payloadRange(in: frame, of: content))
    }

    // MARK: subscriptions

    /// Adds `subscriber` (idempotent) unless that passes its subscription limit. `ack` encodes
    /// the reply; it is queued, under the lock, before the replayed events and before any live
    /// event.
    func subscribe(
        _ subscriber: Subscriber, replay: ReplayRequest, ack: (SubscribeReceipt) -> ByteBuffer
    ) throws(PubSubError) -> SubscribeReceipt {
        try lock.withLock(of: self) { _ throws(PubSubError) in try subscribeLocked(subscriber, replay: replay, ack: ack) }
    }

    private func subscribeLocked(
        _ subscriber: Subscriber, replay: ReplayRequest, ack: (SubscribeReceipt) -> ByteBuffer
    ) throws(PubSubError) -> SubscribeReceipt {
        guard !deleted else { throw .topicNotFound(name) }
        let key = ObjectIdentifier(subscriber)
        if slots[key] != nil {
            // Already subscribed: harmless, and no replay (it would duplicate delivered events).
            let receipt = SubscribeReceipt(
                topic: name, subscriberCount: subscribers.count, seq: seq, epoch: epoch, replayed: 0,
                recovered: nil
            )
            subscriber.enqueue(.frame(ack(receipt)))
            return receipt
        }
        try subscriber.didJoin(self)
        let (replayed, recovered) = selectReplay(replay)
        slots[key] = subscribers.count
        subscribers.append(subscriber)
        formatCounts[subscriber.format] += 1
        let receipt = SubscribeReceipt(
            topic: name, subscriberCount: subscribers.count, seq: seq, epoch: epoch,
            replayed: replayed.count, recovered: recovered
        )
        subscriber.enqueue(.frame(ack(receipt)))
        // Replayed events take the queue's policy, as live ones do.
        for publication in replayed {
            subscriber.enqueue(.publication(replayable(publication, format: subscriber.format)))
        }
        return receipt
    }

    private func selectReplay(_ replay: ReplayRequest) -> ([Publication], Bool?) {
        switch replay {
        case .none:
            return ([], nil)
        case .lastN(let n):
            return (history.last(n), nil)
        case .since(var since, let clientEpoch):
            var recovered = true
            if let clientEpoch, clientEpoch != epoch {
                since = 0
                recovered = false
            }
            if since > seq {
                // A position this topic never reached: the client's view is from elsewhere.
                return ([], false)
            }
            let missing = seq - since
            let retained = history.after(since)
            if UInt64(retained.count) < missing { recovered = false }
            return (retained, recovered)
        }
    }

    /// The payload in a buffer of its own, for a publication none of whose frames holds it
    /// verbatim: never the buffer the message arrived in (it would keep the whole read alive).
    private func ownCopy(of payload: ByteBuffer) -> ByteBuffer {
        var copy = ByteBufferAllocator().buffer(capacity: payload.readableBytes)
        copy.writeImmutableBuffer(payload)
        return copy
    }

    /// A history publication with a frame for `format`: itself, or (if nobody of that format
    /// was subscribed when it was published) a copy with that frame encoded now. Replay only;
    /// live events always have it, and a shared publication's frames never change.
    private func replayable(_ publication: Publication, format: Int) -> Publication {
        if publication.frames[format] != nil { return publication }
        var frames = publication.frames
        frames[format] = encoders[format].encode(publication)
        return publication.with(frames: frames)
    }

    /// Removes `subscriber` (idempotent) and queues `ack`'s frame, given the count after.
    func unsubscribe(_ subscriber: Subscriber, ack: (Int) -> ByteBuffer) {
        lock.withLock(of: self) { _ in
            removeLocked(subscriber)
            subscriber.enqueue(.frame(ack(subscribers.count)))
        }
    }

    /// Removes `subscriber` of a connection that has gone; nothing is queued.
    func remove(_ subscriber: Subscriber) {
        lock.withLock(of: self) { _ in removeLocked(subscriber) }
    }

    private func removeLocked(_ subscriber: Subscriber) {
        guard let index = slots.removeValue(forKey: ObjectIdentifier(subscriber)) else { return }
        let last = subscribers.removeLast()
        if index < subscribers.count {
            subscribers[index] = last
            slots[ObjectIdentifier(last)] = index
        }
        formatCounts[subscriber.format] -= 1
        subscriber.didLeave(self)
    }

    /// Marks the topic deleted and tells every subscriber (after what is already queued).
    func delete() {
        lock.withLock(of: self) { _ in deleteLocked() }
    }

    private func deleteLocked() {
        deleted = true
        brokerCounters.publishedByDeletedTopics.wrappingAdd(Int(clamping: seq), ordering: .relaxed)
        // Nothing can read it any more; a publisher's cache may still hold the topic object.
        history = HistoryRing(capacity: 0)
        arena = FrameArena()
        for subscriber in subscribers {
            subscriber.didLeave(self)
            subscriber.enqueue(.topicDeleted(self))
        }
        subscribers.removeAll()
        slots.removeAll()
        for slot in formatCounts.indices { formatCounts[slot] = 0 }
    }

    func history(lastN: Int?) -> [Publication] {
        lock.withLock(of: self) { _ in history.last(lastN ?? history.count) }
    }
}
