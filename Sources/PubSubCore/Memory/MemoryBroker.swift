import NIOCore
import Synchronization

/// The single-node engine: topics, `seq`s and history live in this process's memory, and
/// publications go straight to the node's ``Hub`` (every answer is `.now`).
///
///     let broker = MemoryBroker(configuration: BrokerConfiguration())
///     let hub = Hub(broker: broker, encoders: [NativeEventEncoder()])
public final class MemoryBroker: Broker {
    public let configuration: BrokerConfiguration
    private let registry = Mutex<[String: MemoryTopic]>([:])
    /// Publications of the topics deleted so far. A live topic counts its own, as its `seq`
    /// (under its lock): a shared counter bumped by every publish would be an atomic
    /// read-modify-write, and a contended cache line, per message.
    private let publishedByDeletedTopics = Atomic<Int>(0)
    /// Who is subscribed where (MemoryBroker+Presence.swift).
    let presence = MemoryPresence()
    /// What the node's wildcard subscriptions watch: told of each topic created.
    private let watch = TopicWatch()

    /// This process, among the nodes of a cluster: it is alone.
    private let nodeID: String = {
        var ids = MessageIDGenerator()
        return ids.shortID()
    }()

    public init(configuration: BrokerConfiguration) {
        self.configuration = configuration
    }

    public func status() -> EngineStatus {
        EngineStatus(engine: "memory", ready: true, nodeID: nodeID, cluster: nil, otherNodesSubscriberCounts: nil)
    }

    public func start(load: @escaping @Sendable () -> NodeLoad) {}
    public func shutdown() async {}

    // MARK: topic lifecycle

    public func createTopic(_ name: String) -> BrokerAnswer<TopicSnapshot> {
        .now(
            Result { () throws(PubSubError) in
                try TopicName.validate(name)
                let topic = try registry.withLock(of: self) { topics throws(PubSubError) in
                    if topics[name] != nil { throw .topicExists(name) }
                    return try insertTopic(name, into: &topics)
                }
                watch.watcher(of: name)?.topicAppeared(name, after: 0)
                return topic.snapshot()
            }
        )
    }

    /// Adds a new topic to the registry (locked by the caller), unless that passes `maxTopics`.
    private func insertTopic(_ name: String, into topics: inout [String: MemoryTopic]) throws(PubSubError) -> MemoryTopic {
        let maximum = configuration.maxTopics
        if maximum > 0 && topics.count >= maximum {
            throw .limitExceeded("max_topics", maximum: maximum, "the server holds its limit of \(maximum) topics")
        }
        let topic = MemoryTopic(name: name, historySize: configuration.historySize, now: WallClock.nowMillis())
        topics[name] = topic
        return topic
    }

    public func deleteTopic(_ name: String) -> BrokerAnswer<TopicSnapshot> {
        .now(
            Result { () throws(PubSubError) in
                try TopicName.validate(name)
                guard let topic = registry.withLock(of: self, { $0.removeValue(forKey: name) }) else { throw .topicNotFound(name) }
                let snapshot = topic.snapshot()
                let (seq, sink) = topic.delete()
                publishedByDeletedTopics.wrappingAdd(Int(clamping: seq), ordering: .relaxed)
                presence.removeAll(topic: name)
                // After every delivery to it (those happened under the topic's lock, before the deletion).
                sink?.topicDeleted()
                return snapshot
            }
        )
    }

    public func topic(_ name: String) -> BrokerAnswer<TopicSnapshot> {
        .now(Result { () throws(PubSubError) in try lookup(name, create: false).snapshot() })
    }

    public func topics() -> BrokerAnswer<[TopicSnapshot]> {
        .success(registry.withLock(of: self) { Array($0.values) }.map { $0.snapshot() }.sorted { $0.name < $1.name })
    }

    public func publishedCount() -> BrokerAnswer<Int> {
        // Deleted first: a topic leaves the registry before its count moves over, so one
        // deleted meanwhile is left out rather than counted twice, and the total never drops.
        let deleted = publishedByDeletedTopics.load(ordering: .relaxed)
        let live = registry.withLock(of: self) { Array($0.values) }.reduce(0) { $0 + Int(clamping: $1.snapshot().messageCount) }
        return .success(deleted + live)
    }

    /// Finds a topic, creating it when auto-creation is on and `create` allows it.
    /// One that a node's subscribe creates is not announced to the watcher: the node follows
    /// it already (and the hub holds its registry's lock).
    func lookup(_ name: String, create: Bool, announce: Bool = true) throws(PubSubError) -> MemoryTopic {
        if let topic = registry.withLock(of: self, { $0[name] }) { return topic }
        try TopicName.validate(name)
        guard create && configuration.autoCreateTopics else { throw .topicNotFound(name) }
        let (topic, created) = try registry.withLock(of: self) { topics throws(PubSubError) in
            if let existing = topics[name] { return (existing, false) }
            return (try insertTopic(name, into: &topics), true)
        }
        // Before anything is published to it: the watcher subscribes it first (outside the
        // registry's lock, as the hub takes its own before the engine's).
        if created && announce { watch.watcher(of: name)?.topicAppeared(name, after: 0) }
        return topic
    }

    public func watchTopics(prefixes: Set<String>, watcher: any TopicWatcher) -> BrokerAnswer<Void> {
        watch.set(prefixes: prefixes, watcher: watcher)
        return .success(())
    }

    // MARK: publish

    public func publish(
        topic name: String, messages: inout [MessageInput], cache: inout PublishCache, receipts: inout [PublishReceipt]
    ) -> PublishAnswer {
        defer { messages.removeAll(keepingCapacity: true) }
        let now = cache.now ?? WallClock.nowMillis()
        var published = 0
        if let cached = cache.engineTopic as? MemoryTopic, cached.name == name {
            published = cached.publish(&messages, from: 0, now: now, receipts: &receipts)
            if published == messages.count { return .now(failure: nil) }
        }
        // Not cached, another topic's, or deleted since it was cached: the registry decides
        // (auto-creation may make a new one).
        cache.engineTopic = nil
        do throws(PubSubError) {
            let topic = try lookup(name, create: true)
            cache.engineTopic = topic
            published += topic.publish(&messages, from: published, now: now, receipts: &receipts)
            return .now(failure: published == messages.count ? nil : .topicNotFound(name))
        } catch {
            return .now(failure: error)
        }
    }

    // MARK: the node's subscriptions and history

    public func subscribe(topic name: String, sink: any TopicSink) -> BrokerAnswer<UInt64> {
        .now(Result { () throws(PubSubError) in try lookup(name, create: true, announce: false).subscribe(sink) })
    }

    public func unsubscribe(topic name: String, sink: any TopicSink) {
        registry.withLock(of: self) { $0[name] }?.unsubscribe(sink)
    }

    public func history(topic name: String, _ query: HistoryQuery) -> BrokerAnswer<History> {
        .now(
            Result { () throws(PubSubError) in
                if case .last(let n?) = query, n < 0 { throw .badRequest("last_n must be 0 or more") }
                return try lookup(name, create: false).history(query)
            }
        )
    }
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
