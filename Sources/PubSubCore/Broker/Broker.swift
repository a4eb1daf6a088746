import NIOCore

/// The node's link to the engine, as Centrifuge's `Broker` is: topic lifecycle, `seq` and
/// history, and the publications that reach this node. The in-memory engine
/// (`MemoryBroker`) is one implementation; an engine behind Redis is another, and sessions,
/// REST and the ``Hub`` hold `any Broker`, never an engine's type.
///
///     let answer = broker.publish(topic: "orders", messages: &messages, cache: &cache, receipts: &receipts)
///     let topics = try await broker.topics().get()
///
/// Every operation answers through ``BrokerAnswer``: at once (`.now`, the memory engine, with
/// nothing allocated for it) or later (`.later`, an engine that asks the network).
///
/// Publications reach the node through a ``TopicSink``: the ``Hub`` subscribes a topic for
/// the node with its sink while it has local subscribers, and the engine hands the sink each
/// publication of the topic, in `seq` order, and the topic's deletion.
public protocol Broker: AnyObject, Sendable {
    func createTopic(_ name: String) -> BrokerAnswer<TopicSnapshot>
    func deleteTopic(_ name: String) -> BrokerAnswer<TopicSnapshot>
    func topic(_ name: String) -> BrokerAnswer<TopicSnapshot>
    /// Every topic, sorted by name.
    func topics() -> BrokerAnswer<[TopicSnapshot]>

    /// Publishes `messages` to `topic`, in order, as consecutive `seq`s, and empties `messages`
    /// (each is consumed: the engine keeps nothing of the buffer it arrived in). A receipt per
    /// message published is appended to `receipts` (`.now`) or brought by the future
    /// (`.later`); at the first message that cannot be published the rest are not.
    func publish(
        topic: String, messages: inout [MessageInput], cache: inout PublishCache, receipts: inout [PublishReceipt]
    ) -> PublishAnswer

    /// Retained publications, oldest first, and the topic's position when they were read.
    func history(topic: String, _ query: HistoryQuery) -> BrokerAnswer<History>

    /// Starts handing `topic`'s publications and deletion to `sink` (this node's); answers the
    /// topic's seq at that moment: every publication after it is handed to the sink, and a
    /// history read after the answer sees every one the sink did not get. (A history read
    /// may be ahead of the sink: an engine behind the network hands publications over a
    /// moment after they are in its history.) A topic that does not exist is created if the
    /// engine auto-creates topics.
    func subscribe(topic: String, sink: any TopicSink) -> BrokerAnswer<UInt64>
    /// Stops handing `topic` to `sink`; a sink that is no longer the topic's is ignored.
    func unsubscribe(topic: String, sink: any TopicSink)

    /// Adds `entry` to `topic`'s presence (replacing one of the same client id) and hands the
    /// join to the topic's sink on every node; TOPIC_NOT_FOUND for a topic that does not exist.
    func joinPresence(topic: String, entry: PresenceEntry) -> BrokerAnswer<Void>
    /// Takes `clientID`'s entry out of `topic`'s presence and hands the leave to the sinks;
    /// nothing when there is none.
    func leavePresence(topic: String, clientID: String)
    /// `topic`'s presence list (``Array/presenceOrdered()``), the cluster's with an engine
    /// shared by many nodes; TOPIC_NOT_FOUND for a topic that does not exist.
    func presence(topic: String) -> BrokerAnswer<[PresenceEntry]>

    /// Tells `watcher` of topics this node does not follow whose names begin with one of
    /// `prefixes` (an empty one matches every name), from now on; no prefixes: of none. A
    /// publish to a topic no prefix matches costs nothing more than before.
    /// Answers once the engine watches them (a networked engine asks its server first).
    func watchTopics(prefixes: Set<String>, watcher: any TopicWatcher) -> BrokerAnswer<Void>

    /// Messages published since the start, deleted topics' included.
    func publishedCount() -> BrokerAnswer<Int>

    /// The engine's name, whether it can serve now, and the cluster it is shared by.
    func status() -> EngineStatus
    /// Starts the engine's background work (its connections, this node's place in the
    /// cluster); `load` tells it this node's figures for the cluster's list.
    func start(load: @escaping @Sendable () -> NodeLoad)
    /// Stops that work; the node leaves the cluster.
    func shutdown() async
}

/// Where an engine hands a topic's publications and its deletion to the node (the ``Hub``'s
/// per-topic state). Called by one thread at a time per topic, in `seq` order; the engine
/// calls `topicDeleted` after the last `deliver`, and holds none of its own locks around it.
public protocol TopicSink: AnyObject, Sendable {
    /// Makes each content of `batch` (consecutive `seq`s, oldest first) into its publication,
    /// queues them for the node's subscribers, and appends a receipt each to `receipts`, in
    /// order; the engine then takes the publications (its history).
    func deliver(_ batch: inout PublicationBatch, counters: TopicCounters, receipts: inout [PublishReceipt])
    /// The topic was deleted: its subscribers are told, after what is already queued for them.
    func topicDeleted()
    /// Publications of the topic the engine cannot hand over (it lost its link, and they are
    /// no longer retained when it caught up): the subscribers are told how many, in order
    /// with the deliveries around it.
    func missed(_ count: Int)
    /// The most publications to hand over in one ``deliver(_:counters:receipts:)``:
    /// an engine that holds a lock around it splits larger batches, so that a batch to many
    /// subscribers does not keep other publishers and history reads waiting long.
    var deliveryBatchLimit: Int { get }
    /// Subscriptions of the topic came or went (on any node): see ``Broker/joinPresence(topic:entry:)``.
    func presenceChanged(_ diff: PresenceDiff)
}

/// An engine's answer: at once, or later when the engine has to ask the network.
public enum BrokerAnswer<Value: Sendable>: Sendable {
    case now(Result<Value, PubSubError>)
    case later(EventLoopFuture<Value>)

    public static func success(_ value: Value) -> Self { .now(.success(value)) }
    public static func failure(_ error: PubSubError) -> Self { .now(.failure(error)) }

    /// The value, waited for (REST and other async callers).
    public func get() async throws(PubSubError) -> Value {
        switch self {
        case .now(let result):
            return try result.get()
        case .later(let future):
            do {
                return try await future.get()
            } catch {
                throw PubSubError(engineFailure: error)
            }
        }
    }

    /// The answer of `next` given this one's value: at once when this one is, else when it completes.
    public func then<Next: Sendable>(
        _ next: @escaping @Sendable (Value) -> BrokerAnswer<Next>
    ) -> BrokerAnswer<Next> {
        switch self {
        case .now(.success(let value)):
            return next(value)
        case .now(.failure(let error)):
            return .failure(error)
        case .later(let future):
            return .later(
                future.flatMap { value in
                    switch next(value) {
                    case .now(let result): future.eventLoop.makeCompletedFuture(result.mapError { $0 as any Error })
                    case .later(let nextFuture): nextFuture
                    }
                }
            )
        }
    }

    public func map<Next: Sendable>(_ transform: @escaping @Sendable (Value) -> Next) -> BrokerAnswer<Next> {
        then { .success(transform($0)) }
    }
}

/// What a publish answered: see ``Broker/publish(topic:messages:cache:receipts:)``.
public enum PublishAnswer: Sendable {
    /// Done: the receipts are in `receipts`; `failure` stopped the messages after them.
    case now(failure: PubSubError?)
    /// The engine publishes over the network: the future brings the receipts, and the
    /// failure that stopped the rest.
    case later(EventLoopFuture<PublishResult>)
}

/// The outcome of an engine's publish that answered later.
public struct PublishResult: Sendable {
    public var receipts: [PublishReceipt]
    public var failure: PubSubError?

    public init(receipts: [PublishReceipt], failure: PubSubError?) {
        self.receipts = receipts
        self.failure = failure
    }
}

extension Broker {
    /// Publishes one message (REST): a batch of one, waited for.
    public func publish(topic: String, message: consuming MessageInput) async throws(PubSubError) -> PublishReceipt {
        var messages = [consume message]
        var cache = PublishCache()
        var receipts: [PublishReceipt] = []
        switch publish(topic: topic, messages: &messages, cache: &cache, receipts: &receipts) {
        case .now(let failure):
            if let receipt = receipts.first { return receipt }
            throw failure ?? PubSubError(.internal, "the engine published nothing and reported no failure")
        case .later(let future):
            let result = try await BrokerAnswer.later(future).get()
            if let receipt = result.receipts.first { return receipt }
            throw result.failure ?? PubSubError(.internal, "the engine published nothing and reported no failure")
        }
    }
}

extension PubSubError {
    /// An engine's future failed: with a PubSubError, that one; otherwise (the network, a
    /// closed connection) INTERNAL, saying what happened.
    public init(engineFailure error: any Error) {
        self = error as? PubSubError ?? PubSubError(.internal, "engine failure: \(error)")
    }
}

/// Which retained publications a history read returns.
public enum HistoryQuery: Sendable, Equatable {
    /// The newest `n` (all of them when nil), oldest first.
    case last(Int?)
    /// Every one with `seq > since`.
    case after(UInt64)
}

/// Retained publications and the topic's position (its last `seq` and its epoch) when they
/// were read: a publication with a higher `seq` came after them.
public struct History: Sendable {
    public let publications: [Publication]
    public let seq: UInt64
    public let epoch: String

    public init(publications: [Publication], seq: UInt64, epoch: String) {
        self.publications = publications
        self.seq = seq
        self.epoch = epoch
    }
}

/// What a connection keeps between its publishes: the engine's handle on the topic it last
/// published to (a publisher usually keeps to one: publishing there again skips the engine's
/// registry), and the time of the current socket read.
public struct PublishCache {
    /// The engine's own object for the last topic; only that engine reads it.
    public var engineTopic: AnyObject?
    /// When the messages being published arrived (milliseconds since 1970), set by the
    /// connection for the publishes of one socket read: they share that `ts` without a clock
    /// read each. Nil: the engine reads the clock.
    public var now: Int64?

    public init() {}
}

/// A point-in-time view of a topic, for REST and stats.
public struct TopicSnapshot: Sendable {
    public let name: String
    public let createdAtMillis: Int64
    /// The topic's last seq.
    public let seq: UInt64
    public let epoch: String
    /// Messages published to this topic (seqs start at 1 and have no gaps).
    public var messageCount: UInt64 { seq }
    /// Events of this topic dropped from subscriber queues (this node's).
    public let dropped: Int

    public init(name: String, createdAtMillis: Int64, seq: UInt64, epoch: String, dropped: Int) {
        self.name = name
        self.createdAtMillis = createdAtMillis
        self.seq = seq
        self.epoch = epoch
        self.dropped = dropped
    }
}

/// What a publish did, for its `ack` frame or REST response.
public struct PublishReceipt: Sendable {
    public let topic: String
    public let messageID: MessageID
    public let seq: UInt64
    /// Subscriber queues that took the message (this node's); nil when delivery happens after
    /// the publish answers (an engine shared by many nodes).
    public let delivered: Int?
    /// Messages dropped by this publish: refused (drop-newest, overflow) or evicted
    /// (drop-oldest); nil as `delivered` is.
    public let dropped: Int?
    /// When it was published (the event's `ts`), in milliseconds since 1970.
    public let timestampMillis: Int64

    public init(topic: String, messageID: MessageID, seq: UInt64, delivered: Int?, dropped: Int?, timestampMillis: Int64) {
        self.topic = topic
        self.messageID = messageID
        self.seq = seq
        self.delivered = delivered
        self.dropped = dropped
        self.timestampMillis = timestampMillis
    }
}
