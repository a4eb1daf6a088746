import Logging
import NIOConcurrencyHelpers
import NIOCore
import PubSubCore
import RedisClient
import Synchronization

/// The engine of a cluster: topics, `seq`s, history and publications live in Redis, shared
/// by every node started with the same URL and prefix (SPEC 6, docs/scaling.md).
///
/// Each node keeps two connections: one for commands (pipelined; a publish is one script
/// that assigns the seqs, appends to the history and sends the records on the topic's
/// channel) and one subscribed to the channels of the topics it has subscribers for, whose
/// messages go to those topics' ``RedisTopicFeed``s on the engine's event loop. A node's own
/// publishes come back to it that way too: every node delivers in the order Redis ran them.
///
///     let broker = RedisBroker(configuration: .init(url: try RedisURL("redis://127.0.0.1:6379/0")), group: group)
///     broker.start { NodeLoad(connections: 0, subscriberCounts: [:]) }
public final class RedisBroker: Broker {
    public let configuration: RedisEngineConfiguration
    /// Where the engine's own work runs: both connections, the feeds, the heartbeat.
    let loop: any EventLoop
    let keys: RedisKeys
    let nodeID: String
    let commands: RedisReconnector<RedisConnection>
    let subscriptions: RedisReconnector<RedisSubscriptionConnection>
    /// Feeds by topic name. The lock is held while SUBSCRIBE or UNSUBSCRIBE is written for a
    /// name, so the commands reach Redis in the order the registry changed.
    let feeds = Mutex<[String: RedisTopicFeed]>([:])
    let ids = Mutex(MessageIDGenerator())
    let cluster = ClusterView()
    /// This node's presence entries and their refresh (RedisBroker+Presence.swift).
    let presenceLocal = RedisPresenceLocal()
    let presenceRefresh = Mutex<RepeatedTask?>(nil)
    /// What the node's wildcard subscriptions watch (RedisBroker+Watch).
    let watch = TopicWatch()

    public init(configuration: RedisEngineConfiguration, group: any EventLoopGroup, logger: Logger = Logger(label: "pubsub.redis")) {
        self.configuration = configuration
        let loop = group.next()
        self.loop = loop
        self.keys = RedisKeys(prefix: configuration.prefix)
        var ids = MessageIDGenerator()
        self.nodeID = ids.shortID()
        let url = configuration.url
        self.commands = RedisReconnector(
            on: loop, connect: { RedisConnection.connect(to: url, on: loop) }, closeFuture: { $0.closeFuture },
            close: { $0.close() }
        )
        // The message callback needs the broker, which is not yet whole: it goes through a box.
        let receiver = MessageReceiver()
        self.subscriptions = RedisReconnector(
            on: loop,
            connect: {
                RedisSubscriptionConnection.connect(to: url, on: loop, onMessage: receiver.receive, onPatternMessage: receiver.receivePattern)
            },
            closeFuture: { $0.closeFuture }, close: { $0.close() }
        )
        receiver.broker = self
        subscriptions.onUp = { [weak self] connection in self?.resubscribe(connection) }
        Self.log(commands, "commands", url: url, logger: logger)
        Self.log(subscriptions, "subscriptions", url: url, logger: logger)
    }

    /// Says when a connection comes up and goes down, and (once per outage) that Redis cannot
    /// be reached.
    private static func log<Connection>(_ link: RedisReconnector<Connection>, _ role: String, url: RedisURL, logger: Logger) {
        let metadata: Logger.Metadata = ["redis": "\(url.host):\(url.port)", "connection": "\(role)"]
        let quiet = NIOLockedValueBox(false)
        let previousUp = link.onUp
        link.onUp = { connection in
            quiet.withLockedValue { $0 = false }
            logger.notice("connected to Redis", metadata: metadata)
            previousUp?(connection)
        }
        link.onDown = { logger.warning("lost the connection to Redis; reconnecting", metadata: metadata) }
        link.onFailure = { error, delay in
            let first = quiet.withLockedValue { quiet in
                defer { quiet = true }
                return !quiet
            }
            var details = metadata
            details["error"] = "\(error)"
            details["retry_in_ms"] = "\(delay.nanoseconds / 1_000_000)"
            if first {
                logger.warning("cannot reach Redis; retrying (backoff up to 2 s)", metadata: details)
            } else {
                logger.debug("cannot reach Redis; retrying", metadata: details)
            }
        }
    }

    // MARK: lifecycle

    public func start(load: @escaping @Sendable () -> NodeLoad) {
        commands.start()
        subscriptions.start()
        startHeartbeat(load: load)
        startPresenceRefresh()
    }

    public func shutdown() async {
        stopPresenceRefresh()
        await leaveCluster()
        try? await commands.stop().get()
        try? await subscriptions.stop().get()
    }

    public func status() -> EngineStatus {
        EngineStatus(
            engine: "redis", ready: commands.current != nil && subscriptions.current != nil && cluster.healthy, nodeID: nodeID,
            cluster: cluster.nodes, otherNodesSubscriberCounts: cluster.otherNodesSubscriberCounts
        )
    }

    // MARK: commands

    /// Runs `script` on the command connection: UNAVAILABLE at once when it is down, or when
    /// Redis does not answer within the command timeout.
    func run(_ script: RedisScript, keys: [RESPArgument], arguments: [RESPArgument]) -> EventLoopFuture<RESPValue> {
        guard let connection = commands.current else { return loop.makeFailedFuture(Self.notConnected) }
        return bounded(connection.run(script, keys: keys, arguments: arguments))
    }

    func command(_ arguments: [RESPArgument]) -> EventLoopFuture<RESPValue> {
        guard let connection = commands.current else { return loop.makeFailedFuture(Self.notConnected) }
        return bounded(connection.command(arguments))
    }

    static let notConnected = PubSubError.unavailable("not connected to Redis")

    /// `future`, failed with UNAVAILABLE if it takes longer than the command timeout, and with
    /// Redis's own failures said as PubSubErrors.
    func bounded<Value: Sendable>(_ future: EventLoopFuture<Value>) -> EventLoopFuture<Value> {
        let promise = future.eventLoop.makePromise(of: Value.self)
        let seconds = configuration.commandTimeoutSeconds
        let timer = future.eventLoop.scheduleTask(in: .nanoseconds(Int64(seconds * 1e9))) {
            promise.fail(PubSubError.unavailable("Redis did not answer within \(seconds) s"))
        }
        future.whenComplete { result in
            timer.cancel()
            promise.completeWith(result.mapError(Self.engineError))
        }
        return promise.futureResult
    }

    static func engineError(_ error: any Error) -> any Error {
        switch error {
        case let error as PubSubError: error
        case RESPError.server(let message): PubSubError(.internal, "Redis answered an error: \(message)")
        default: PubSubError.unavailable("\(error)")
        }
    }

    func newEpoch() -> String {
        ids.withLock(of: self) { $0.shortID() }
    }

    // MARK: topic lifecycle

    public func createTopic(_ name: String) -> BrokerAnswer<TopicSnapshot> {
        do { try TopicName.validate(name) } catch { return .failure(error) }
        let now = WallClock.nowMillis()
        let maxTopics = configuration.maxTopics
        let future = run(
            RedisScripts.ensure, keys: [.string(keys.topics), .string(keys.topic(name))],
            arguments: [.string(name), .integer(now), .string(newEpoch()), .integer(Int64(maxTopics)), "create", "0"]
        ).flatMapThrowing { value throws -> TopicSnapshot in
            let answer = try Self.array(value)
            switch answer.first?.int {
            case 1:
                guard answer.count == 3, let epoch = answer[1].string, let created = answer[2].int else { throw Self.malformed(value) }
                return TopicSnapshot(name: name, createdAtMillis: created, seq: 0, epoch: epoch, dropped: 0)
            case 0: throw PubSubError.topicExists(name)
            case -2: throw Self.topicLimit(maxTopics)
            default: throw Self.malformed(value)
            }
        }
        return .later(future)
    }

    public func deleteTopic(_ name: String) -> BrokerAnswer<TopicSnapshot> {
        do { try TopicName.validate(name) } catch { return .failure(error) }
        let future = run(
            RedisScripts.delete,
            keys: [
                .string(keys.topics), .string(keys.topic(name)), .string(keys.history(name)), .string(keys.presence(name)),
                .string(keys.presenceExpiry(name)),
            ],
            arguments: [.string(name), .string(keys.events(name))]
        ).flatMapThrowing { value throws -> TopicSnapshot in
            let answer = try Self.array(value)
            if answer.isEmpty { throw PubSubError.topicNotFound(name) }
            guard answer.count == 3, let seq = answer[0].int, let epoch = answer[1].string, let created = answer[2].int else {
                throw Self.malformed(value)
            }
            return TopicSnapshot(name: name, createdAtMillis: created, seq: UInt64(seq), epoch: epoch, dropped: self.dropped(name))
        }
        return .later(future)
    }

    public func topic(_ name: String) -> BrokerAnswer<TopicSnapshot> {
        do { try TopicName.validate(name) } catch { return .failure(error) }
        let future = command(["HMGET", .string(keys.topic(name)), "seq", "epoch", "created"]).flatMapThrowing {
            value throws -> TopicSnapshot in
            let fields = try Self.array(value)
            guard fields.count == 3 else { throw Self.malformed(value) }
            guard let epoch = fields[1].string else { throw PubSubError.topicNotFound(name) }
            guard let seq = fields[0].int, let created = fields[2].int else { throw Self.malformed(value) }
            return TopicSnapshot(name: name, createdAtMillis: created, seq: UInt64(seq), epoch: epoch, dropped: self.dropped(name))
        }
        return .later(future)
    }

    public func topics() -> BrokerAnswer<[TopicSnapshot]> {
        let future = run(RedisScripts.list, keys: [.string(keys.topics)], arguments: [.string(keys.topicPrefix)]).flatMapThrowing {
            value throws -> [TopicSnapshot] in
            let flat = try Self.array(value)
            guard flat.count % 4 == 0 else { throw Self.malformed(value) }
            var topics: [TopicSnapshot] = []
            topics.reserveCapacity(flat.count / 4)
            for start in stride(from: 0, to: flat.count, by: 4) {
                guard let name = flat[start].string, let seq = flat[start + 1].int, let epoch = flat[start + 2].string,
                    let created = flat[start + 3].int
                else { throw Self.malformed(value) }
                topics.append(TopicSnapshot(name: name, createdAtMillis: created, seq: UInt64(seq), epoch: epoch, dropped: self.dropped(name)))
            }
            return topics.sorted { $0.name < $1.name }
        }
        return .later(future)
    }

    public func publishedCount() -> BrokerAnswer<Int> {
        .later(command(["GET", .string(keys.published)]).map { Int($0.int ?? 0) })
    }

    /// This node's drops of a topic's events.
    private func dropped(_ name: String) -> Int {
        feed(name)?.counters.droppedCount ?? 0
    }

    /// This node's feed of a topic, while it has subscribers here.
    private func feed(_ name: String) -> RedisTopicFeed? {
        feeds.withLock(of: self) { $0[name] }
    }

    // MARK: publish

    public func publish(
        topic name: String, messages: inout [MessageInput], cache: inout PublishCache, receipts: inout [PublishReceipt]
    ) -> PublishAnswer {
        defer { messages.removeAll(keepingCapacity: true) }
        guard !messages.isEmpty else { return .now(failure: nil) }
        do { try TopicName.validate(name) } catch { return .now(failure: error) }
        let now = cache.now ?? WallClock.nowMillis()
        let maxTopics = configuration.maxTopics
        let autoCreate = configuration.autoCreateTopics
        var arguments: [RESPArgument] = []
        arguments.reserveCapacity(7 + 2 * messages.count)
        var messageIDs: [MessageID] = []
        messageIDs.reserveCapacity(messages.count)
        ids.withLock(of: self) { ids in
            // The epoch a topic this publish creates gets (read only then).
            arguments = [
                .string(name), .string(keys.events(name)), .integer(Int64(configuration.historySize)), autoCreate ? "1" : "0",
                .integer(now), .string(autoCreate ? ids.shortID() : ""), .integer(Int64(maxTopics)),
            ]
            for index in messages.indices {
                let id = messages[index].id.map(MessageID.init) ?? ids.uuid()
                messageIDs.append(id)
                arguments.append(.string(id.description))
                arguments.append(.bytes(messages[index].takePayload()))
            }
        }
        let receiptIDs = messageIDs
        let future = run(
            RedisScripts.publish,
            keys: [.string(keys.topics), .string(keys.topic(name)), .string(keys.history(name)), .string(keys.published)],
            arguments: arguments
        ).flatMapThrowing { value throws -> PublishResult in
            let answer = try Self.array(value)
            switch answer.first?.int {
            case -1: return PublishResult(receipts: [], failure: .topicNotFound(name))
            case -2: return PublishResult(receipts: [], failure: Self.topicLimit(maxTopics))
            case let first? where first > 0:
                let receipts = receiptIDs.enumerated().map { index, id in
                    PublishReceipt(topic: name, messageID: id, seq: UInt64(first) + UInt64(index), delivered: nil, dropped: nil, timestampMillis: now)
                }
                return PublishResult(receipts: receipts, failure: nil)
            default:
                throw Self.malformed(value)
            }
        }.flatMapErrorThrowing { error in
            PublishResult(receipts: [], failure: PubSubError(engineFailure: error))
        }
        return .later(future)
    }

    // MARK: history

    public func history(topic name: String, _ query: HistoryQuery) -> BrokerAnswer<History> {
        .later(readHistory(name, query).flatMapThrowing { read throws -> History in
            guard let read else { throw PubSubError.topicNotFound(name) }
            // A replayed event dropped from a queue counts as this node's drop of the topic.
            let counters = self.feed(name)?.counters ?? TopicCounters()
            return History(publications: read.records.map { $0.publication(topic: name, counters: counters) }, seq: read.seq, epoch: read.epoch)
        })
    }

    /// The topic's position and retained records (oldest first), or nil when it does not exist.
    func readHistory(_ name: String, _ query: HistoryQuery) -> EventLoopFuture<(seq: UInt64, epoch: String, records: [RedisRecord])?> {
        let arguments: [RESPArgument]
        switch query {
        case .last(let n?) where n < 0:
            return loop.makeFailedFuture(PubSubError.badRequest("last_n must be 0 or more"))
        case .last(let n): arguments = ["last", .integer(Int64(n ?? -1))]
        case .after(let seq): arguments = ["after", .integer(Int64(clamping: seq))]
        }
        return run(RedisScripts.history, keys: [.string(keys.topic(name)), .string(keys.history(name))], arguments: arguments)
            .flatMapThrowing { value throws in
                let answer = try Self.array(value)
                if answer.isEmpty { return nil }
                guard answer.count == 3, let seq = answer[0].int, let epoch = answer[1].string, case .array(let entries?) = answer[2] else {
                    throw Self.malformed(value)
                }
                var records: [RedisRecord] = []
                records.reserveCapacity(entries.count)
                for entry in entries.reversed() {
                    guard case .bulkString(let bytes?) = entry, let record = RedisRecord(bytes) else { throw Self.malformed(value) }
                    records.append(record)
                }
                return (UInt64(seq), epoch, records)
            }
    }

    // MARK: answers

    static func array(_ value: RESPValue) throws(PubSubError) -> [RESPValue] {
        guard case .array(let values?) = value else { throw malformed(value) }
        return values
    }

    static func malformed(_ value: RESPValue) -> PubSubError {
        PubSubError(.internal, "unexpected answer from Redis: \(value)")
    }

    static func topicLimit(_ maximum: Int) -> PubSubError {
        .limitExceeded("max_topics", maximum: maximum, "the cluster holds its limit of \(maximum) topics")
    }
}

/// Hands the subscription connection's messages to the broker (made before the broker is).
/// Weak: the broker owns the connection whose callback this is.
private final class MessageReceiver: Sendable {
    private struct Reference { weak var broker: RedisBroker? }
    private let box = NIOLockedValueBox(Reference())
    var broker: RedisBroker? {
        get { box.withLockedValue { $0.broker } }
        set { box.withLockedValue { $0.broker = newValue } }
    }

    func receive(_ channel: ByteBuffer, _ payload: ByteBuffer) {
        broker?.received(channel: channel, payload: payload)
    }

    func receivePattern(_ channel: ByteBuffer, _ payload: ByteBuffer) {
        broker?.receivedThroughPattern(channel: channel, payload: payload)
    }
}
