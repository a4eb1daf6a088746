import NIOCore

/// The small protocol sessions and REST routes talk to. The in-memory engine
/// (``MemoryBroker``) is the first implementation; a Redis-backed engine will be a second
/// one beside it, so scaling out never touches the WebSocket or REST code.
///
///     let broker: any Broker = MemoryBroker(configuration: .init(historySize: 100), encoders: [encoder])
///     _ = try broker.createTopic("orders")
public protocol Broker: AnyObject, Sendable {
    func createTopic(_ name: String) throws(PubSubError) -> TopicSnapshot
    func deleteTopic(_ name: String) throws(PubSubError) -> TopicSnapshot
    func topic(_ name: String) throws(PubSubError) -> TopicSnapshot
    func topics() -> [TopicSnapshot]

    /// The message is handed over (consumed): the broker encodes its payload into the
    /// publication's frames and keeps nothing of the buffer it came in.
    func publish(topic: String, message: consuming MessageInput) throws(PubSubError) -> PublishReceipt
    /// ``publish(topic:message:)`` for a connection that keeps `cache` between its publishes.
    func publish(topic: String, message: consuming MessageInput, cache: inout PublishCache) throws(PubSubError) -> PublishReceipt
    /// Publishes a connection's consecutive messages to one topic, in order, and empties
    /// `messages`: a receipt is appended to `receipts` for each one published; at the first
    /// that cannot be, it throws and publishes none after it. The in-memory engine publishes
    /// them as one step (each subscriber is visited once for all of them).
    func publish(
        topic: String, messages: inout [MessageInput], cache: inout PublishCache, receipts: inout [PublishReceipt]
    ) throws(PubSubError)
    /// Subscribes and queues `ack`'s frame, then the replay, ahead of any live event.
    func subscribe(
        _ subscriber: Subscriber, topic: String, replay: ReplayRequest, ack: (SubscribeReceipt) -> ByteBuffer
    ) throws(PubSubError) -> SubscribeReceipt
    /// Unsubscribes (idempotent) and queues `ack`'s frame, given the subscriber count after.
    func unsubscribe(_ subscriber: Subscriber, topic: String, ack: (Int) -> ByteBuffer) throws(PubSubError)
    /// Removes every subscription of a connection that has gone.
    func unsubscribeAll(_ subscriber: Subscriber)
    /// Retained messages, oldest first: the newest `lastN`, or all.
    func history(topic: String, lastN: Int?) throws(PubSubError) -> [Publication]

    var counters: BrokerCounters { get }
}

extension Broker {
    /// Engines that keep nothing per publisher ignore the cache.
    public func publish(topic: String, message: consuming MessageInput, cache: inout PublishCache) throws(PubSubError) -> PublishReceipt {
        try publish(topic: topic, message: message)
    }

    /// Engines without a batch step publish the messages one by one.
    public func publish(
        topic: String, messages: inout [MessageInput], cache: inout PublishCache, receipts: inout [PublishReceipt]
    ) throws(PubSubError) {
        defer { messages.removeAll(keepingCapacity: true) }
        for message in messages {
            receipts.append(try publish(topic: topic, message: message, cache: &cache))
        }
    }
}

/// The topic a connection last published to, kept by the connection: publishing to the same
/// topic again skips the registry (a lock and a hash of the name). It holds the topic, not a
/// claim on it: a topic deleted meanwhile is looked up again.
public struct PublishCache {
    var topic: Topic?
    /// When the messages being published arrived (milliseconds since 1970), set by the
    /// connection for the publishes of one socket read: they get that `ts` without a clock
    /// read each. Nil: each publish reads the clock.
    public var now: Int64?

    public init() {}
}

/// Settings of the in-memory engine.
public struct BrokerConfiguration: Sendable {
    /// Messages retained per topic for replay; 0 disables history.
    public var historySize: Int
    /// Create a topic on first subscribe or publish instead of answering TOPIC_NOT_FOUND.
    public var autoCreateTopics: Bool
    /// Topics at once (created or auto-created); 0 = no limit.
    public var maxTopics: Int

    public init(historySize: Int = 100, autoCreateTopics: Bool = false, maxTopics: Int = 0) {
        self.historySize = historySize
        self.autoCreateTopics = autoCreateTopics
        self.maxTopics = maxTopics
    }
}
