import NIOConcurrencyHelpers
import NIOCore

/// The single-node engine: topics live in this process's memory.
///
///     let broker = MemoryBroker(configuration: BrokerConfiguration(), encoders: [NativeEventEncoder()])
///     let receipt = try broker.publish(topic: "orders", message: input)
public final class MemoryBroker: Broker {
    public let configuration: BrokerConfiguration
    public let counters = BrokerCounters()
    private let encoders: [any PublicationEncoder]
    private let registry = NIOLockedValueBox<[String: Topic]>([:])

    public init(configuration: BrokerConfiguration, encoders: [any PublicationEncoder]) {
        self.configuration = configuration
        precondition(encoders.count <= PublicationFrames.capacity, "at most \(PublicationFrames.capacity) wire formats")
        self.encoders = encoders
    }

    private func makeTopic(_ name: String) -> Topic {
        Topic(name: name, historySize: configuration.historySize, encoders: encoders, counters: counters, now: WallClock.nowMillis())
    }

    public func createTopic(_ name: String) throws(PubSubError) -> TopicSnapshot {
        try TopicName.validate(name)
        let result: Result<Topic, PubSubError> = registry.withLockedValue { topics in
            if topics[name] != nil { return .failure(.topicExists(name)) }
            return insertTopic(name, into: &topics)
        }
        return try result.get().snapshot()
    }

    /// Adds a new topic to the registry (locked by the caller), unless that passes `maxTopics`.
    private func insertTopic(_ name: String, into topics: inout [String: Topic]) -> Result<Topic, PubSubError> {
        let maximum = configuration.maxTopics
        if maximum > 0 && topics.count >= maximum {
            return .failure(.limitExceeded("max_topics", maximum: maximum, "the server holds its limit of \(maximum) topics"))
        }
        let topic = makeTopic(name)
        topics[name] = topic
        return .success(topic)
    }

    public func deleteTopic(_ name: String) throws(PubSubError) -> TopicSnapshot {
        try TopicName.validate(name)
        guard let topic = registry.withLockedValue({ $0.removeValue(forKey: name) }) else {
            throw .topicNotFound(name)
        }
        let snapshot = topic.snapshot()
        topic.delete()
        return snapshot
    }

    public func topic(_ name: String) throws(PubSubError) -> TopicSnapshot {
        try lookup(name, create: false).snapshot()
    }

    public func topics() -> [TopicSnapshot] {
        registry.withLockedValue { Array($0.values) }
            .map { $0.snapshot() }
            .sorted { $0.name < $1.name }
    }

    /// Finds a topic, creating it when auto-creation is on and `create` allows it.
    private func lookup(_ name: String, create: Bool) throws(PubSubError) -> Topic {
        if let topic = registry.withLockedValue({ $0[name] }) { return topic }
        try TopicName.validate(name)
        guard create && configuration.autoCreateTopics else { throw .topicNotFound(name) }
        let result: Result<Topic, PubSubError> = registry.withLockedValue { topics in
            if let existing = topics[name] { return .success(existing) }
            return insertTopic(name, into: &topics)
        }
        return try result.get()
    }

    public func publish(topic name: String, message: consuming MessageInput) throws(PubSubError) -> PublishReceipt {
        var cache = PublishCache()
        return try publishLookingUp(name, message, cache: &cache)
    }

    public func publish(topic name: String, message: consuming MessageInput, cache: inout PublishCache) throws(PubSubError) -> PublishReceipt {
        guard let cached = cache.topic.map(Unmanaged.passUnretained) else {
            return try publishLookingUp(name, message, cache: &cache)
        }
        let now = cache.now ?? WallClock.nowMillis()
        // The cache holds the topic across the call: used at +0, no retain and release of it
        // per publish. Each path consumes the message once (handed on, not kept here).
        // (Moved through an optional: a closure can take a value out of one, not consume it.)
        var input = Optional(consume message)
        let outcome = cached._withUnsafeGuaranteedRef { topic in
            // Another topic's name: the publisher moved on; looked up as if it were deleted.
            topic.name == name ? topic.publish(input.take()!, now: now) : .deleted(input.take()!)
        }
        switch consume outcome {
        case .published(let receipt):
            return receipt
        case .deleted(let unpublished):
            // Deleted since it was cached: the registry decides (auto-creation may make a new one).
            cache.topic = nil
            return try publishLookingUp(name, unpublished, cache: &cache)
        }
    }

    public func publish(
        topic name: String, messages: inout [MessageInput], cache: inout PublishCache, receipts: inout [PublishReceipt]
    ) throws(PubSubError) {
        defer { messages.removeAll(keepingCapacity: true) }
        let now = cache.now ?? WallClock.nowMillis()
        var published = 0
        if let cached = cache.topic, cached.name == name {
            published = cached.publish(&messages, now: now, receipts: &receipts)
            if published == messages.count { return }
        }
        // Not cached, another topic's, or deleted since it was cached (perhaps midway): the
        // registry decides about the rest (auto-creation may make a new one).
        cache.topic = nil
        let topic = try lookup(name, create: true)
        cache.topic = topic
        published += topic.publish(&messages, from: published, now: now, receipts: &receipts)
        guard published == messages.count else { throw .topicNotFound(name) }
    }

    /// Publishes through the registry, leaving the topic in `cache`.
    private func publishLookingUp(_ name: String, _ message: consuming MessageInput, cache: inout PublishCache) throws(PubSubError) -> PublishReceipt {
        let topic = try lookup(name, create: true)
        cache.topic = topic
        guard case .published(let receipt) = topic.publish(message, now: cache.now ?? WallClock.nowMillis()) else { throw .topicNotFound(name) }
        return receipt
    }

    public func subscribe(
        _ subscriber: Subscriber, topic name: String, replay: ReplayRequest, ack: (SubscribeReceipt) -> ByteBuffer
    ) throws(PubSubError) -> SubscribeReceipt {
        let topic = try lookup(name, create: true)
        return try topic.subscribe(subscriber, replay: replay, ack: ack)
    }

    public func unsubscribe(_ subscriber: Subscriber, topic name: String, ack: (Int) -> ByteBuffer) throws(PubSubError) {
        let topic = try lookup(name, create: false)
        topic.unsubscribe(subscriber, ack: ack)
    }

    public func unsubscribeAll(_ subscriber: Subscriber) {
        for topic in subscriber.joinedTopics() {
            topic.remove(subscriber)
        }
    }

    public func history(topic name: String, lastN: Int?) throws(PubSubError) -> [Publication] {
        if let lastN, lastN < 0 { throw .badRequest("last_n must be 0 or more") }
        return try lookup(name, create: false).history(lastN: lastN)
    }

    /// Subscription counts by topic name, for stats.
    public func subscriptionCounts() -> [String: Int] {
        var result: [String: Int] = [:]
        for topic in registry.withLockedValue({ Array($0.values) }) {
            result[topic.name] = topic.subscriberCount
        }
        return result
    }
}
