import BrokerContract
import NIOCore
import NIOConcurrencyHelpers
import Testing

@testable import PubSubCore


func makeBroker(history: Int = 100) -> MemoryNode {
    MemoryNode(BrokerConfiguration(historySize: history))
}

func makeSubscriber(_ broker: MemoryNode, limits: QueueLimits = QueueLimits(maxMessages: 1_000_000, maxBytes: 1 << 30)) -> Subscriber {
    Subscriber(clientID: "c", format: 0, limits: limits, counters: broker.counters) {}
}

func message(_ text: String) -> MessageInput {
    MessageInput(id: nil, payload: ByteBuffer(string: "\"\(text)\""))
}

/// Everything queued for `subscriber`: event seqs (acks as -1, deletions as -2).
func drainSeqs(_ subscriber: Subscriber) -> [Int] {
    var items = OutboundQueue()
    _ = subscriber.drain(into: &items)
    return items.map { item in
        switch item {
        case .publication(let p): Int(p.seq)
        case .frame: -1
        case .topicDeleted: -2
        case .missed: -3
        }
    }
}

let ack: @Sendable (SubscribeReceipt) -> ByteBuffer = { _ in ByteBuffer(string: "ack") }

@Suite("Topic names")
struct TopicNameTests {
    @Test(arguments: ["a", "orders", "Orders.EU-1_x", String(repeating: "z", count: 255)])
    func valid(_ name: String) throws {
        try TopicName.validate(name)
    }

    @Test(arguments: ["", "with space", "slash/es", "ünïcode", "star*", String(repeating: "z", count: 256), "tab\t"])
    func invalid(_ name: String) {
        #expect(throws: PubSubError.self) { try TopicName.validate(name) }
        do { try TopicName.validate(name) } catch { #expect(error.code == .badRequest) }
    }
}

@Suite("Hub and memory engine")
struct HubTests {
    @Test func topicLifecycleErrors() throws {
        let broker = makeBroker()
        _ = try broker.createTopic("t")
        #expect(throws: PubSubError.topicExists("t")) { try broker.createTopic("t") }
        #expect(throws: PubSubError.topicNotFound("u")) { try broker.publish(topic: "u", message: message("x")) }
        _ = try broker.deleteTopic("t")
        #expect(throws: PubSubError.topicNotFound("t")) { try broker.deleteTopic("t") }
    }

    /// A connection's publish cache skips the registry for its last topic, but a topic
    /// deleted (and perhaps created again) since is never published to through it.
    @Test(arguments: [false, true])
    func publishCacheFollowsTheRegistry(autoCreate: Bool) throws {
        let broker = MemoryNode(BrokerConfiguration(historySize: 10, autoCreateTopics: autoCreate))
        var cache = PublishCache()
        _ = try broker.createTopic("t")
        _ = try broker.createTopic("u")
        #expect(try broker.publish(topic: "t", message: message("1"), cache: &cache).seq == 1)
        #expect(try broker.publish(topic: "t", message: message("2"), cache: &cache).seq == 2)
        // Another name is looked up, not sent to the cached topic.
        #expect(try broker.publish(topic: "u", message: message("3"), cache: &cache).seq == 1)
        #expect(try broker.publish(topic: "t", message: message("4"), cache: &cache).seq == 3)
        _ = try broker.deleteTopic("t")
        if autoCreate {
            // A new topic of the same name: its first message, and the one readers see.
            #expect(try broker.publish(topic: "t", message: message("5"), cache: &cache).seq == 1)
            #expect(try broker.history(topic: "t", lastN: nil).map(\.seq) == [1])
        } else {
            #expect(throws: PubSubError.topicNotFound("t")) { try broker.publish(topic: "t", message: message("5"), cache: &cache) }
            _ = try broker.createTopic("t")
            #expect(try broker.publish(topic: "t", message: message("6"), cache: &cache).seq == 1)
        }
    }

    @Test func perTopicOrderWithConcurrentPublishers() async throws {
        let broker = makeBroker()
        _ = try broker.createTopic("t")
        let subscribers = (0..<5).map { _ in makeSubscriber(broker) }
        for s in subscribers { _ = try broker.subscribe(s, topic: "t", replay: .none, ack: ack) }
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask { for _ in 0..<500 { _ = try? broker.publish(topic: "t", message: message("m")) } }
            }
        }
        for s in subscribers {
            let seqs = drainSeqs(s).filter { $0 > 0 }
            #expect(seqs == Array(1...4000))
        }
    }

    /// Subscribers joining with `last_n` or `since` while 4 publishers publish: every one sees a
    /// contiguous run of seqs (replay then live), no gap, no duplicate.
    @Test(arguments: [ReplayKind.lastN, .since])
    func replayJoinsLiveStreamWithoutGapOrDuplicate(_ kind: ReplayKind) async throws {
        let broker = makeBroker(history: 1_000)
        _ = try broker.createTopic("t")
        let joined = NIOLockedValueBox<[(Subscriber, UInt64, Int)]>([])  // subscriber, seq at join, replayed
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<4 {
                group.addTask { for _ in 0..<2_000 { _ = try? broker.publish(topic: "t", message: message("m")) } }
            }
            for j in 0..<40 {
                group.addTask {
                    for _ in 0..<(j * 50) { await Task.yield() }
                    let subscriber = makeSubscriber(broker)
                    let current = (try? broker.topic("t").seq) ?? 0
                    let replay: ReplayRequest = kind == .lastN ? .lastN(20) : .since(current > 10 ? current - 10 : 0, epoch: nil)
                    let receipt = try! broker.subscribe(subscriber, topic: "t", replay: replay, ack: ack)
                    joined.withLockedValue { $0.append((subscriber, receipt.seq, receipt.replayed)) }
                }
            }
        }
        let total = 8_000
        for (subscriber, seqAtJoin, replayed) in joined.withLockedValue({ $0 }) {
            let items = drainSeqs(subscriber)
            #expect(items.first == -1, "the ack comes first")
            let seqs = items.dropFirst()
            #expect(seqs.count == replayed + (total - Int(seqAtJoin)))
            #expect(Array(seqs) == Array((Int(seqAtJoin) - replayed + 1)...total))
        }
    }

    enum ReplayKind: Sendable { case lastN, since }

    @Test func sinceWithEpochAndGaps() throws {
        let broker = makeBroker(history: 3)
        let topic = try broker.createTopic("t")
        for _ in 0..<5 { _ = try broker.publish(topic: "t", message: message("m")) }
        let a = makeSubscriber(broker)
        let ra = try broker.subscribe(a, topic: "t", replay: .since(3, epoch: topic.epoch), ack: ack)
        #expect(ra.recovered == true)
        #expect(drainSeqs(a) == [-1, 4, 5])
        let b = makeSubscriber(broker)
        let rb = try broker.subscribe(b, topic: "t", replay: .since(1, epoch: nil), ack: ack)
        #expect(rb.recovered == false)
        #expect(drainSeqs(b) == [-1, 3, 4, 5])
        let c = makeSubscriber(broker)
        let rc = try broker.subscribe(c, topic: "t", replay: .since(4, epoch: "other"), ack: ack)
        #expect(rc.recovered == false)
        #expect(drainSeqs(c) == [-1, 3, 4, 5])
        let d = makeSubscriber(broker)
        let rd = try broker.subscribe(d, topic: "t", replay: .since(5, epoch: topic.epoch), ack: ack)
        #expect(rd.recovered == true)
        #expect(rd.replayed == 0)
    }

    @Test func subscribingTwiceIsOneSubscription() throws {
        let broker = makeBroker()
        _ = try broker.createTopic("t")
        let s = makeSubscriber(broker)
        _ = try broker.subscribe(s, topic: "t", replay: .none, ack: ack)
        let again = try broker.subscribe(s, topic: "t", replay: .lastN(5), ack: ack)
        #expect(again.subscriberCount == 1)
        _ = try broker.publish(topic: "t", message: message("x"))
        #expect(drainSeqs(s) == [-1, -1, 1])
    }

    @Test func connectionCleanupRemovesEverySubscription() throws {
        let broker = makeBroker()
        for name in ["a", "b", "c"] { _ = try broker.createTopic(name) }
        let s = makeSubscriber(broker)
        for name in ["a", "b", "c"] { _ = try broker.subscribe(s, topic: name, replay: .none, ack: ack) }
        #expect(broker.hub.subscriberCounts() == ["a": 1, "b": 1, "c": 1])
        broker.unsubscribeAll(s)
        #expect(broker.hub.subscriberCounts() == [:])
        #expect(s.topicNames.isEmpty)
        #expect(try broker.publish(topic: "a", message: message("x")).delivered == 0)
    }

    @Test func deletingATopicTellsItsSubscribers() throws {
        let broker = makeBroker()
        _ = try broker.createTopic("t")
        let subscribers = (0..<3).map { _ in makeSubscriber(broker) }
        for s in subscribers { _ = try broker.subscribe(s, topic: "t", replay: .none, ack: ack) }
        _ = try broker.publish(topic: "t", message: message("x"))
        _ = try broker.deleteTopic("t")
        for s in subscribers {
            #expect(drainSeqs(s) == [-1, 1, -2])
            #expect(s.topicNames.isEmpty)
        }
        #expect(throws: PubSubError.topicNotFound("t")) { try broker.topic("t") }
    }

    /// A broker and a subscriber let go of with their subscriptions in place are freed, with
    /// the topics, their history and the queued events: the subscriber's record of its topics
    /// does not keep them alive. (It did: each topic held its subscribers and each subscriber
    /// its topics, a cycle that only an unsubscribe broke, so everything a broker ever held
    /// leaked with it. LeakSanitizer reported it for every test that never unsubscribed.)
    @Test func aBrokerAndItsSubscribersLetGoOfAreFreed() throws {
        weak var weakSubscriber: Subscriber?
        weak var weakPublication: Publication?
        weak var weakBroker: MemoryNode?
        func use() throws {
            let broker = makeBroker()
            for name in ["a", "b"] { _ = try broker.createTopic(name) }
            let subscriber = makeSubscriber(broker)
            for name in ["a", "b"] { _ = try broker.subscribe(subscriber, topic: name, replay: .none, ack: ack) }
            _ = try broker.publish(topic: "a", message: message("x"))
            weakPublication = try broker.history(topic: "a", lastN: 1).first
            weakSubscriber = subscriber
            weakBroker = broker
            #expect(Set(subscriber.topicNames) == ["a", "b"])
            #expect(weakPublication != nil)
        }
        try use()
        #expect(weakBroker == nil)
        #expect(weakSubscriber == nil, "a topic kept its subscriber alive")
        #expect(weakPublication == nil, "the history and the queue outlived the broker")
    }

    /// A subscriber outliving its broker (a connection closing after the server's broker is
    /// gone) still closes and unsubscribes cleanly, and knows of no topic.
    @Test func aSubscriberOutlivingItsBrokerUnsubscribesCleanly() throws {
        var broker: MemoryNode? = makeBroker()
        _ = try broker!.createTopic("t")
        let subscriber = makeSubscriber(broker!)
        _ = try broker!.subscribe(subscriber, topic: "t", replay: .none, ack: ack)
        let other = makeBroker()
        broker = nil
        #expect(subscriber.topicNames.isEmpty)
        other.unsubscribeAll(subscriber)
        subscriber.close()
    }

    /// Live topics count their own publishes (their seq); a deleted topic's are kept aside, so
    /// the total stays exact across deletions and a topic recreated under the same name.
    @Test func publishedCountSurvivesDeletion() throws {
        let broker = makeBroker()
        _ = try broker.createTopic("a")
        _ = try broker.createTopic("b")
        for _ in 0..<2 { _ = try broker.publish(topic: "a", message: message("x")) }
        _ = try broker.publish(topic: "b", message: message("x"))
        #expect(try broker.publishedCount() == 3)
        _ = try broker.deleteTopic("a")
        #expect(try broker.publishedCount() == 3)
        _ = try broker.createTopic("a")
        _ = try broker.publish(topic: "a", message: message("x"))
        #expect(try broker.publishedCount() == 4)
    }
}

@Suite("Backpressure policies")
struct BackpressureUnitTests {
    func setUp(_ policy: BackpressurePolicy, maxMessages: Int = 3, maxBytes: Int = 1 << 20) throws -> (MemoryNode, Subscriber, Subscriber) {
        let broker = makeBroker()
        _ = try broker.createTopic("t")
        let slow = makeSubscriber(broker, limits: QueueLimits(maxMessages: maxMessages, maxBytes: maxBytes, policy: policy))
        let fast = makeSubscriber(broker)
        _ = try broker.subscribe(slow, topic: "t", replay: .none, ack: ack)
        _ = try broker.subscribe(fast, topic: "t", replay: .none, ack: ack)
        _ = drainSeqs(slow)
        _ = drainSeqs(fast)
        return (broker, slow, fast)
    }

    @Test func dropOldestKeepsTheNewest() throws {
        let (broker, slow, fast) = try setUp(.dropOldest)
        var dropped = 0
        for _ in 0..<10 { dropped += try broker.publish(topic: "t", message: message("m")).dropped ?? -100 }
        #expect(dropped == 7)
        var items = OutboundQueue()
        let batch = slow.drain(into: &items)
        #expect(batch.dropped == 7)
        #expect(items.map { if case .publication(let p) = $0 { Int(p.seq) } else { 0 } } == [8, 9, 10])
        #expect(drainSeqs(fast) == Array(1...10))
        #expect(broker.counters.droppedCount == 7)
        #expect(try broker.topic("t").dropped == 7)
    }

    @Test func dropNewestKeepsTheOldest() throws {
        let (broker, slow, fast) = try setUp(.dropNewest)
        for _ in 0..<10 { _ = try broker.publish(topic: "t", message: message("m")) }
        #expect(drainSeqs(slow) == [1, 2, 3])
        #expect(drainSeqs(fast) == Array(1...10))
    }

    @Test func byteLimitAppliesToo() throws {
        // Frames are 1 to 2 bytes ("1".."10"): a 4-byte queue holds at most 3 of the first ones.
        let (broker, slow, _) = try setUp(.dropNewest, maxMessages: 100, maxBytes: 4)
        for _ in 0..<10 { _ = try broker.publish(topic: "t", message: message("m")) }
        #expect(drainSeqs(slow) == [1, 2, 3, 4])
    }

    @Test func disconnectMarksTheQueueOverflowed() throws {
        let (broker, slow, fast) = try setUp(.disconnect)
        for _ in 0..<10 { _ = try broker.publish(topic: "t", message: message("m")) }
        #expect(slow.hasOverflowed)
        var items = OutboundQueue()
        #expect(slow.drain(into: &items).overflowed)
        let queued = items.count  // (#expect cannot take apart a noncopyable value)
        #expect(queued == 0)
        #expect(drainSeqs(fast) == Array(1...10))
    }

    /// Replies are never dropped: an event makes way for them, and when only replies are
    /// left the queue overflows (SPEC 2.4: the client is closed as a slow consumer).
    @Test func repliesEvictEventsThenOverflow() throws {
        let (broker, slow, _) = try setUp(.dropOldest, maxMessages: 2)
        _ = try broker.publish(topic: "t", message: message("m"))
        #expect(slow.enqueue(.frame(ByteBuffer(string: "reply"))))
        #expect(slow.enqueue(.frame(ByteBuffer(string: "reply"))), "the event is evicted for it")
        #expect(!slow.hasOverflowed)
        #expect(!slow.enqueue(.frame(ByteBuffer(string: "reply"))), "only replies left: no room")
        #expect(slow.hasOverflowed)
        #expect(drainSeqs(slow) == [], "an overflowed queue writes nothing more")
    }

    /// Replayed events count against the limits and take the policy, as live ones do.
    @Test func replayTakesThePolicy() throws {
        let broker = makeBroker()
        _ = try broker.createTopic("t")
        for _ in 0..<5 { _ = try broker.publish(topic: "t", message: message("m")) }
        // "ack" (3 bytes) + 1-byte replayed frames: the 5-byte limit holds two of them.
        let s = makeSubscriber(broker, limits: QueueLimits(maxMessages: 100, maxBytes: 5, policy: .dropNewest))
        _ = try broker.subscribe(s, topic: "t", replay: .lastN(5), ack: ack)
        #expect(try broker.publish(topic: "t", message: message("m")).dropped == 1)
        #expect(drainSeqs(s) == [-1, 1, 2])
        #expect(try broker.topic("t").dropped == 4)
    }

    /// A replay to a subscriber whose format nobody had when the events were published gets
    /// them encoded now, in copies: the shared publications in history stay as they were.
    @Test func replayInAFormatNotEncodedAtPublish() throws {
        struct TaggedEncoder: PublicationEncoder {
            func encode(_ publication: borrowing PublicationContent) -> ByteBuffer { ByteBuffer(string: "v1:\(publication.seq)") }
        }
        let broker = MemoryNode(BrokerConfiguration(historySize: 10), encoders: [SeqEncoder(), TaggedEncoder()])
        _ = try broker.createTopic("t")
        let plain = makeSubscriber(broker)
        _ = try broker.subscribe(plain, topic: "t", replay: .none, ack: ack)
        for _ in 0..<3 { _ = try broker.publish(topic: "t", message: message("m")) }
        let other = Subscriber(clientID: "o", format: 1, limits: QueueLimits(), counters: broker.counters) {}
        _ = try broker.subscribe(other, topic: "t", replay: .lastN(2), ack: ack)
        var items = OutboundQueue()
        _ = other.drain(into: &items)
        let frames = items.map { item -> String in
            guard case .publication(let p) = item, let frame = p.frames[1] else { return "" }
            return String(buffer: frame)
        }
        #expect(frames == ["", "v1:2", "v1:3"], "the ack, then both replayed events in format 1")
        #expect(try broker.history(topic: "t", lastN: 3).allSatisfy { $0.frames[1] == nil })
        #expect(drainSeqs(plain) == [-1, 1, 2, 3])
    }

    @Test func wakeOnlyWhenTheQueueBecomesNonEmpty() throws {
        let broker = makeBroker()
        _ = try broker.createTopic("t")
        let wakes = NIOLockedValueBox(0)
        let s = Subscriber(clientID: "c", format: 0, limits: QueueLimits(), counters: broker.counters) {
            wakes.withLockedValue { $0 += 1 }
        }
        _ = try broker.subscribe(s, topic: "t", replay: .none, ack: ack)
        for _ in 0..<5 { _ = try broker.publish(topic: "t", message: message("m")) }
        #expect(wakes.withLockedValue { $0 } == 1)
        _ = drainSeqs(s)
        _ = try broker.publish(topic: "t", message: message("m"))
        #expect(wakes.withLockedValue { $0 } == 2)
    }
}
