import BrokerContract
import NIOCore
import Testing

@testable import PubSubCore

/// A batch publish (``Broker/publish(topic:messages:cache:receipts:)``) visits each subscriber
/// once for all its messages: it must do exactly what publishing them one by one (batches of
/// one, through the same path) does, however the hub splits it.
@Suite("Publish batches")
struct PublishBatchTests {
    /// Subscribers with every kind of limit, one with a reply queued ahead (never dropped).
    static func subscribers(_ broker: MemoryNode, policy: BackpressurePolicy) -> [Subscriber] {
        let limits = [
            QueueLimits(maxMessages: 1_000_000, maxBytes: 1 << 30, policy: policy),
            QueueLimits(maxMessages: 3, maxBytes: 1 << 30, policy: policy),
            QueueLimits(maxMessages: 1_000, maxBytes: 5, policy: policy),
            QueueLimits(maxMessages: 1, maxBytes: 1 << 30, policy: policy),
        ]
        return limits.map { makeSubscriber(broker, limits: $0) }
    }

    struct Outcome: Equatable {
        var receipts: [[UInt64]]  // seq, delivered, dropped
        var queues: [[Int]]
        var history: [UInt64]
        var dropped: Int
        var overflowed: [Bool]
    }

    /// `offersPerLock`: the hub's budget per hold of a topic's lock, so that a batch is
    /// delivered a few messages at a time, as with many subscribers.
    static func run(policy: BackpressurePolicy, batch sizes: [Int]?, offersPerLock: Int = 65_536) throws -> Outcome {
        let broker = MemoryNode(BrokerConfiguration(historySize: 5), offersPerLock: offersPerLock)
        _ = try broker.createTopic("t")
        let subscribers = subscribers(broker, policy: policy)
        for (index, subscriber) in subscribers.enumerated() {
            _ = try broker.subscribe(subscriber, topic: "t", replay: .none, ack: ack)
            // Only the last keeps its ack queued, as a reply a slow client has not read yet.
            if index < subscribers.count - 1 { _ = drainSeqs(subscriber) }
        }
        var receipts: [PublishReceipt] = []
        var cache = PublishCache()
        var sent = 0
        if let sizes {
            for size in sizes {
                var messages = (0..<size).map { message(String(sent + $0)) }
                sent += size
                try broker.publish(topic: "t", messages: &messages, cache: &cache, receipts: &receipts)
                #expect(messages.isEmpty)
            }
        } else {
            for _ in 0..<12 {
                receipts.append(try broker.publish(topic: "t", message: message(String(sent)), cache: &cache))
                sent += 1
            }
        }
        return Outcome(
            receipts: receipts.map { [$0.seq, UInt64($0.delivered ?? 999), UInt64($0.dropped ?? 999)] },
            queues: subscribers.map(drainSeqs),
            history: try broker.history(topic: "t", lastN: nil).map(\.seq),
            dropped: broker.counters.droppedCount,
            overflowed: subscribers.map(\.hasOverflowed)
        )
    }

    @Test(arguments: [BackpressurePolicy.dropOldest, .dropNewest, .disconnect])
    func sameAsOneByOne(_ policy: BackpressurePolicy) throws {
        let oneByOne = try Self.run(policy: policy, batch: nil)
        #expect(oneByOne.receipts.map { $0[0] } == Array(1...12))
        for sizes in [[12], [1, 11], [5, 2, 5], [3, 3, 3, 3]] {
            #expect(try Self.run(policy: policy, batch: sizes) == oneByOne, "batches \(sizes)")
        }
        // With 4 subscribers: 1, 2 and 3 messages per hold of the topic's lock.
        for offersPerLock in [1, 8, 12] {
            for sizes in [[1, 11], [2, 5, 5]] {
                #expect(try Self.run(policy: policy, batch: sizes, offersPerLock: offersPerLock) == oneByOne, "batches \(sizes), \(offersPerLock) offers a lock")
            }
        }
    }

    @Test func missingTopicPublishesNothing() throws {
        let broker = makeBroker()
        var cache = PublishCache()
        var messages = [message("a"), message("b")]
        var receipts: [PublishReceipt] = []
        #expect(throws: PubSubError.topicNotFound("u")) {
            try broker.publish(topic: "u", messages: &messages, cache: &cache, receipts: &receipts)
        }
        #expect(receipts.isEmpty)
        #expect(messages.isEmpty)
    }

    /// A cached topic deleted since is not published to; a new one of that name is (auto-creation).
    @Test func deletedCachedTopicIsLookedUpAgain() throws {
        let broker = MemoryNode(BrokerConfiguration(historySize: 10, autoCreateTopics: true))
        var cache = PublishCache()
        var receipts: [PublishReceipt] = []
        var messages = [message("a"), message("b")]
        try broker.publish(topic: "t", messages: &messages, cache: &cache, receipts: &receipts)
        _ = try broker.deleteTopic("t")
        messages = [message("c")]
        try broker.publish(topic: "t", messages: &messages, cache: &cache, receipts: &receipts)
        #expect(receipts.map(\.seq) == [1, 2, 1])
        #expect(try broker.history(topic: "t", lastN: nil).map(\.seq) == [1])
    }
}
