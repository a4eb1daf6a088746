import NIOCore
import PubSubCore

/// A node of the memory engine and a hub, with the synchronous calls tests make: the memory
/// engine answers everything at once (``now(_:)`` traps otherwise).
///
///     let node = MemoryNode(BrokerConfiguration(historySize: 10))
///     _ = try node.publish(topic: "t", message: MessageInput(id: nil, payload: ByteBuffer(string: "1")))
public final class MemoryNode: Sendable {
    public let engine: MemoryBroker
    public let hub: Hub

    public init(_ configuration: BrokerConfiguration = BrokerConfiguration(), encoders: [any PublicationEncoder] = [SeqEncoder()], offersPerLock: Int = 65_536) {
        engine = MemoryBroker(configuration: configuration)
        hub = Hub(broker: engine, encoders: encoders, offersPerLock: offersPerLock)
    }

    public var counters: HubCounters { hub.counters }

    public func createTopic(_ name: String) throws(PubSubError) -> TopicSnapshot { try now(engine.createTopic(name)) }
    public func deleteTopic(_ name: String) throws(PubSubError) -> TopicSnapshot { try now(engine.deleteTopic(name)) }
    public func topic(_ name: String) throws(PubSubError) -> TopicSnapshot { try now(engine.topic(name)) }

    public func publish(topic: String, message: MessageInput) throws(PubSubError) -> PublishReceipt {
        var cache = PublishCache()
        return try publish(topic: topic, message: message, cache: &cache)
    }

    public func publish(topic: String, message: MessageInput, cache: inout PublishCache) throws(PubSubError) -> PublishReceipt {
        var messages = [message]
        var receipts: [PublishReceipt] = []
        try publish(topic: topic, messages: &messages, cache: &cache, receipts: &receipts)
        return receipts[0]
    }

    public func publish(topic: String, messages: inout [MessageInput], cache: inout PublishCache, receipts: inout [PublishReceipt]) throws(PubSubError) {
        guard case .now(let failure) = engine.publish(topic: topic, messages: &messages, cache: &cache, receipts: &receipts) else {
            preconditionFailure("the memory engine answers at once")
        }
        if let failure { throw failure }
    }

    public func subscribe(
        _ subscriber: Subscriber, topic: String, replay: ReplayRequest, ack: @escaping @Sendable (SubscribeReceipt) -> ByteBuffer
    ) throws(PubSubError) -> SubscribeReceipt {
        try now(hub.subscribe(subscriber, topic: topic, replay: replay, ack: ack))
    }

    public func unsubscribe(_ subscriber: Subscriber, topic: String) throws(PubSubError) -> Int {
        try now(hub.unsubscribe(subscriber, topic: topic) { _ in ByteBuffer(string: "unsubscribed") })
    }

    public func unsubscribeAll(_ subscriber: Subscriber) { hub.unsubscribeAll(subscriber) }

    public func history(topic: String, lastN: Int?) throws(PubSubError) -> [Publication] {
        try now(engine.history(topic: topic, .last(lastN))).publications
    }

    public func publishedCount() throws(PubSubError) -> Int { try now(engine.publishedCount()) }
}

public func now<Value>(_ answer: BrokerAnswer<Value>) throws(PubSubError) -> Value {
    guard case .now(let result) = answer else { preconditionFailure("the memory engine answers at once") }
    return try result.get()
}

/// Encodes a publication as its decimal seq, so tests can read queues back.
public struct SeqEncoder: PublicationEncoder {
    public init() {}
    public func encode(_ publication: borrowing PublicationContent) -> ByteBuffer { ByteBuffer(string: String(publication.seq)) }
}
