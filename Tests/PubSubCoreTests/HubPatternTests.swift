import BrokerContract
import NIOCore
import Testing

@testable import PubSubCore

/// Everything queued for `subscriber`, as `topic:seq` for events, and the frames' text.
private func drain(_ subscriber: Subscriber) -> [String] {
    var items = OutboundQueue()
    _ = subscriber.drain(into: &items)
    return items.map { item in
        switch item {
        case .publication(let p): "\(p.topic):\(p.seq)"
        case .frame(let frame): String(buffer: frame.bytes)
        case .topicDeleted(let topic): "deleted \(topic.name)"
        case .missed: "missed"
        }
    }
}

private let patternAck: @Sendable (SubscribeReceipt) -> ByteBuffer = { receipt in
    ByteBuffer(string: receipt.pattern ? "ack \(receipt.topic) \(receipt.subscriberCount)" : "ack \(receipt.topic)")
}

@Suite("Wildcard subscriptions in the hub")
struct HubPatternTests {
    func node(autoCreate: Bool = true) -> MemoryNode {
        MemoryNode(BrokerConfiguration(historySize: 100, autoCreateTopics: autoCreate))
    }

    func publish(_ node: MemoryNode, _ topic: String, _ count: Int = 1) throws {
        for _ in 0..<count { _ = try node.publish(topic: topic, message: message("x")) }
    }

    @Test func existingAndLaterTopicsMatch() throws {
        let node = node()
        _ = try node.createTopic("orders.eu")
        try publish(node, "orders.eu", 2)
        _ = try node.createTopic("other")
        let subscriber = makeSubscriber(node)
        let receipt = try now(node.hub.subscribe(subscriber, topic: "orders.*", replay: .none, ack: patternAck))
        #expect(receipt.pattern && receipt.topic == "orders.*" && receipt.subscriberCount == 1)
        try publish(node, "orders.eu")
        try publish(node, "other")
        try publish(node, "orders.us")  // created by this publish
        try publish(node, "orders.eu.paris")  // one token too many
        _ = try node.createTopic("orders.asia")
        try publish(node, "orders.asia")
        #expect(drain(subscriber) == ["ack orders.* 1", "orders.eu:3", "orders.us:1", "orders.asia:1"])
    }

    @Test func theRestMatchesDeeperTopics() throws {
        let node = node()
        let subscriber = makeSubscriber(node)
        _ = try now(node.hub.subscribe(subscriber, topic: "a.>", replay: .none, ack: patternAck))
        try publish(node, "a")
        try publish(node, "a.b")
        try publish(node, "a.b.c")
        #expect(drain(subscriber) == ["ack a.> 1", "a.b:1", "a.b.c:1"])
    }

    @Test func replayAndBadPatternsAreRefused() throws {
        let node = node()
        let subscriber = makeSubscriber(node)
        #expect(throws: PubSubError.self) { try now(node.hub.subscribe(subscriber, topic: "orders.*", replay: .lastN(5), ack: patternAck)) }
        #expect(throws: PubSubError.self) {
            try now(node.hub.subscribe(subscriber, topic: "orders.*", replay: .since(3, epoch: nil), ack: patternAck))
        }
        #expect(throws: PubSubError.self) { try now(node.hub.subscribe(subscriber, topic: "orders.>.x", replay: .none, ack: patternAck)) }
        #expect(throws: PubSubError.self) { try now(node.hub.subscribe(subscriber, topic: "ord*", replay: .none, ack: patternAck)) }
        do {
            _ = try node.publish(topic: "orders.*", message: message("x"))
            Issue.record("a publish to a pattern went through")
        } catch {
            #expect(error.code == .badRequest && error.message.contains("pattern"))
        }
        #expect(drain(subscriber).isEmpty)
    }

    /// In a topic by name and through two patterns: each event once; each unsubscribe leaves
    /// it in the topic while another of them still covers it.
    @Test func overlappingSubscriptionsDeliverOnce() throws {
        let node = node()
        let subscriber = makeSubscriber(node)
        _ = try node.subscribe(subscriber, topic: "orders.eu", replay: .none, ack: patternAck)
        _ = try now(node.hub.subscribe(subscriber, topic: "orders.*", replay: .none, ack: patternAck))
        _ = try now(node.hub.subscribe(subscriber, topic: "*.eu", replay: .none, ack: patternAck))
        try publish(node, "orders.eu")
        #expect(drain(subscriber) == ["ack orders.eu", "ack orders.* 1", "ack *.eu 1", "orders.eu:1"])
        _ = try node.unsubscribe(subscriber, topic: "orders.eu")
        try publish(node, "orders.eu")
        _ = try node.unsubscribe(subscriber, topic: "orders.*")
        try publish(node, "orders.eu")
        _ = try node.unsubscribe(subscriber, topic: "*.eu")
        try publish(node, "orders.eu")
        #expect(drain(subscriber) == ["unsubscribed", "orders.eu:2", "unsubscribed", "orders.eu:3", "unsubscribed"])
        #expect(node.hub.subscriberCount("orders.eu") == 0)
    }

    @Test func unsubscribingAPatternKeepsATopicSubscribedByName() throws {
        let node = node()
        let subscriber = makeSubscriber(node)
        _ = try now(node.hub.subscribe(subscriber, topic: "orders.*", replay: .none, ack: patternAck))
        try publish(node, "orders.eu")
        _ = try node.subscribe(subscriber, topic: "orders.eu", replay: .none, ack: patternAck)
        _ = try node.unsubscribe(subscriber, topic: "orders.*")
        try publish(node, "orders.eu")
        try publish(node, "orders.us")
        #expect(drain(subscriber) == ["ack orders.* 1", "orders.eu:1", "ack orders.eu", "unsubscribed", "orders.eu:2"])
    }

    @Test func aPatternSubscribedTwiceIsOne() throws {
        let node = node()
        let one = makeSubscriber(node)
        let two = makeSubscriber(node)
        _ = try now(node.hub.subscribe(one, topic: ">", replay: .none, ack: patternAck))
        _ = try now(node.hub.subscribe(one, topic: ">", replay: .none, ack: patternAck))
        _ = try now(node.hub.subscribe(two, topic: ">", replay: .none, ack: patternAck))
        try publish(node, "t")
        #expect(drain(one) == ["ack > 1", "ack > 1", "t:1"])
        #expect(drain(two) == ["ack > 2", "t:1"])
        #expect(node.hub.subscriberCount("t") == 2)
    }

    @Test func aTopicSubscribedByNameAfterThePatternMatches() throws {
        let node = node()
        let pattern = makeSubscriber(node)
        let named = makeSubscriber(node)
        _ = try now(node.hub.subscribe(pattern, topic: "orders.*", replay: .none, ack: patternAck))
        // This subscribe creates the topic (auto-creation): the pattern joins it too.
        _ = try node.subscribe(named, topic: "orders.new", replay: .none, ack: patternAck)
        try publish(node, "orders.new")
        #expect(drain(pattern) == ["ack orders.* 1", "orders.new:1"])
        #expect(drain(named) == ["ack orders.new", "orders.new:1"])
    }

    /// Deleted while matched: its pattern subscribers are told as its other subscribers
    /// are, and a topic made again under that name matches again.
    @Test func deletionAndRecreation() throws {
        let node = node(autoCreate: false)
        _ = try node.createTopic("orders.eu")
        let subscriber = makeSubscriber(node)
        _ = try now(node.hub.subscribe(subscriber, topic: "orders.*", replay: .none, ack: patternAck))
        try publish(node, "orders.eu")
        _ = try node.deleteTopic("orders.eu")
        _ = try node.createTopic("orders.eu")
        try publish(node, "orders.eu")
        #expect(drain(subscriber) == ["ack orders.* 1", "orders.eu:1", "deleted orders.eu", "orders.eu:1"])
    }

    @Test func aConnectionThatGoesLeavesNothingBehind() throws {
        let node = node()
        let subscriber = makeSubscriber(node)
        _ = try now(node.hub.subscribe(subscriber, topic: "orders.*", replay: .none, ack: patternAck))
        try publish(node, "orders.eu")
        node.unsubscribeAll(subscriber)
        #expect(node.hub.subscriberCount("orders.eu") == 0)
        #expect(node.hub.patterns.subscribers(of: "orders.eu").isEmpty)
        #expect(node.hub.patterns.watchedPrefixes.isEmpty)
        try publish(node, "orders.us")
        #expect(drain(subscriber) == ["ack orders.* 1", "orders.eu:1"])
    }

    /// A pattern's topics do not count against the connection's limit; its patterns do.
    @Test func subscriptionLimit() throws {
        let node = node()
        let subscriber = Subscriber(clientID: "c", format: 0, limits: QueueLimits(), counters: node.counters, maxSubscriptions: 1) {}
        _ = try now(node.hub.subscribe(subscriber, topic: "orders.*", replay: .none, ack: patternAck))
        for topic in ["orders.a", "orders.b", "orders.c"] { try publish(node, topic) }
        _ = try node.subscribe(subscriber, topic: "named", replay: .none, ack: patternAck)
        #expect(throws: PubSubError.self) { try now(node.hub.subscribe(subscriber, topic: "x.*", replay: .none, ack: patternAck)) }
        #expect(drain(subscriber) == ["ack orders.* 1", "orders.a:1", "orders.b:1", "orders.c:1", "ack named"])
    }

    /// The engine behind the network (answers later): a pattern catches topics made after it.
    @Test func deferredEngine() async throws {
        let engine = DeferredBroker(MemoryBroker(configuration: BrokerConfiguration(autoCreateTopics: true)))
        let hub = Hub(broker: engine, encoders: [SeqEncoder()])
        let subscriber = Subscriber(clientID: "c", format: 0, limits: QueueLimits(), counters: hub.counters) {}
        _ = try await hub.subscribe(subscriber, topic: "orders.*", replay: .none, ack: patternAck).get()
        _ = try await engine.publish(topic: "orders.eu", message: message("x"))
        var seen: [String] = []
        for _ in 0..<3000 where seen.count < 2 {
            seen += drain(subscriber)
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(seen == ["ack orders.* 1", "orders.eu:1"])
    }
}
