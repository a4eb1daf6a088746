import NIOCore
import Synchronization

/// This node's fan-out, as Centrifuge's Hub: which local subscribers are in which topic, and
/// the subscription of each such topic with the engine. Sessions subscribe and unsubscribe
/// here; the engine hands each topic's publications to its ``HubTopic``, which queues them
/// for the subscribers (bounded queues, their policies) and joins replays to the live stream.
///
///     let hub = Hub(broker: broker, encoders: [NativeEventEncoder()])
///     let answer = hub.subscribe(subscriber, topic: "orders", replay: .lastN(10)) { ackFrame($0) }
public final class Hub: Sendable {
    public let broker: any Broker
    public let counters = HubCounters()
    /// Wire formats by slot of ``PublicationFrames``: each publication is encoded once per
    /// format that has subscribers on this node.
    let encoders: [any PublicationEncoder]
    /// The most offers a topic makes per batch it is handed: a batch to many subscribers is
    /// taken a few messages at a time (``TopicSink/deliveryBatchLimit``), so joins and other
    /// publishers wait for a bounded number of offers, not for a whole batch times every
    /// subscriber. Each part visits every subscriber once, so a larger part spreads each
    /// visit's cache misses over more messages (docs/design.md, "Figures behind the choices").
    let offersPerLock: Int
    let topics = Mutex<[String: HubTopic]>([:])
    /// Wildcard subscriptions (SPEC 9): see Hub+Patterns.
    let patterns = PatternRegistry()
    /// Subscribers that asked for presence diffs (Hub+Presence.swift).
    let presenceWatchers = PresenceWatchers()

    public init(broker: any Broker, encoders: [any PublicationEncoder], offersPerLock: Int = 262_144) {
        precondition(encoders.count <= PublicationFrames.capacity, "at most \(PublicationFrames.capacity) wire formats")
        self.broker = broker
        self.encoders = encoders
        self.offersPerLock = offersPerLock
    }

    /// Subscribes `subscriber` to `topic` (idempotent): `ack`'s frame is queued, then the
    /// replay, ahead of any live event. Lock order: the hub's registry, a topic, a subscriber;
    /// the engine's locks may be taken under the registry's, never the other way round.
    public func subscribe(
        _ subscriber: Subscriber, topic name: String, replay: ReplayRequest,
        ack: @escaping @Sendable (SubscribeReceipt) -> ByteBuffer
    ) -> BrokerAnswer<SubscribeReceipt> {
        if Self.looksLikePattern(name) { return subscribe(subscriber, pattern: name, replay: replay, ack: ack) }
        let topic: HubTopic
        switch beginJoin(subscriber, topic: name, counted: true) {
        case .failure(let error):
            return .failure(error)
        case .success((let found, .alreadySubscribed)):
            // In it through a pattern until now: a subscriber by name is in the presence list.
            let joined: BrokerAnswer<Void> = patterns.markDirect(subscriber, topic: name) ? joinPresence(subscriber, topic: name) : .success(())
            // Harmless, and no replay (it would duplicate delivered events).
            return joined.then { self.broker.history(topic: name, .last(0)) }.map { history in
                let receipt = SubscribeReceipt(
                    topic: name, subscriberCount: found.subscriberCount, seq: history.seq, epoch: history.epoch, replayed: 0,
                    recovered: nil
                )
                subscriber.enqueue(.frame(ack(receipt)))
                return receipt
            }
        case .success((let found, .joining)):
            topic = found
        }
        patterns.markDirect(subscriber, topic: name)
        // The engine does not announce a topic this subscribe created.
        followPatterns(name)
        return completeJoin(subscriber, topic, replay: replay, presence: true, ack: ack)
    }

    /// Finds or makes the topic's state and takes `subscriber` in as joining; `counted`
    /// joins count against the connection's subscription limit (a pattern's do not).
    func beginJoin(_ subscriber: Subscriber, topic name: String, counted: Bool) -> Result<(HubTopic, HubTopic.Join), PubSubError> {
        let broker = self.broker
        return topics.withLock(of: self) { topics in
            do throws(PubSubError) {
                if let topic = topics[name], let join = try topic.beginJoin(subscriber, counted: counted) {
                    return .success((topic, join))
                }
                try TopicName.validate(name)
                let topic = HubTopic(name: name, hub: self)
                let subscription = broker.subscribe(topic: name, sink: topic)
                if case .now(.failure(let error)) = subscription { throw error }
                topic.engineSubscription = subscription.map { position in topic.handedOver(upTo: position) }
                topics[name] = topic
                return .success((topic, try topic.beginJoin(subscriber, counted: counted)!))
            } catch {
                return .failure(error)
            }
        }
    }

    /// Reads the replay and moves a joining subscriber live; with `ack`, its frame goes first.
    /// A subscriber by name joins the topic's presence list first; one through a pattern does
    /// not (a `>` subscriber would otherwise be listed in every topic).
    func completeJoin(
        _ subscriber: Subscriber, _ topic: HubTopic, replay: ReplayRequest, presence: Bool, ack: (@Sendable (SubscribeReceipt) -> ByteBuffer)?
    ) -> BrokerAnswer<SubscribeReceipt> {
        let broker = self.broker
        let name = topic.name
        let answer = topic.engineSubscription
            .then { presence ? self.joinPresence(subscriber, topic: name) : .success(()) }
            .then { broker.history(topic: name, replay.query) }
            .then { history -> BrokerAnswer<(History, (publications: [Publication], recovered: Bool?))> in
                if let replayed = replay.replay(of: history) { return .success((history, replayed)) }
                // The client saw another epoch: everything retained, read again from the start.
                return broker.history(topic: name, .after(0)).map { history in (history, (history.publications, false)) }
            }
            .then { (history, replayed) -> BrokerAnswer<SubscribeReceipt> in
                .now(Result { () throws(PubSubError) in try topic.completeJoin(subscriber, history: history, replay: replayed, ack: ack) })
            }
        answer.whenFailed {
            topic.abortJoin(subscriber)
            self.retireIfUnused(topic)
            if presence { self.leavePresence(subscriber, topic: name) }
        }
        return answer
    }

    /// Unsubscribes (idempotent) and queues `ack`'s frame, given this node's subscriber count
    /// after; a topic that does not exist answers TOPIC_NOT_FOUND.
    public func unsubscribe(_ subscriber: Subscriber, topic name: String, ack: @escaping @Sendable (Int) -> ByteBuffer) -> BrokerAnswer<Int> {
        if Self.looksLikePattern(name) { return unsubscribe(subscriber, pattern: name, ack: ack) }
        if let topic = topics.withLock(of: self, { $0[name] }), !topic.isDefunct {
            // A pattern of this connection's matches it too: its events keep coming.
            if patterns.keepsThroughPattern(subscriber, topic: name) {
                leavePresence(subscriber, topic: name)
                let count = topic.subscriberCount
                subscriber.enqueue(.frame(ack(count)))
                return .success(count)
            }
            var count = 0
            topic.remove(subscriber) { after in
                count = after
                return ack(after)
            }
            retireIfUnused(topic)
            leavePresence(subscriber, topic: name)
            return .success(count)
        }
        // Not subscribed here: the engine says whether the topic exists.
        return broker.topic(name).map { _ in
            subscriber.enqueue(.frame(ack(0)))
            return 0
        }
    }

    /// Removes every subscription of a connection that has gone (or left its channel).
    public func unsubscribeAll(_ subscriber: Subscriber) {
        unsubscribePatterns(subscriber)
        for topic in subscriber.joinedTopics() {
            topic.remove(subscriber)
            retireIfUnused(topic)
            leavePresence(subscriber, topic: topic.name)
        }
        presenceWatchers.removeAll(subscriber)
    }

    /// This node's subscribers of `topic`.
    public func subscriberCount(_ topic: String) -> Int {
        topics.withLock(of: self) { $0[topic] }?.subscriberCount ?? 0
    }

    /// Delivery latency of `topic` to this node's subscribers over the last minute (SPEC 8);
    /// nil when none was timed (no subscriber here, or nothing published).
    public func latency(_ topic: String) -> LatencySummary? {
        topics.withLock(of: self) { $0[topic] }?.latency
    }

    /// Subscriber counts by topic name, for stats.
    public func subscriberCounts() -> [String: Int] {
        topics.withLock(of: self) { $0.mapValues(\.subscriberCount) }.filter { $0.value > 0 }
    }

    /// Takes a topic with no subscribers left (or defunct) out of the registry, and its
    /// subscription out of the engine: a topic nobody here reads costs this node nothing.
    func retireIfUnused(_ topic: HubTopic) {
        let retired = topics.withLock(of: self) { topics -> Bool in
            guard topics[topic.name] === topic, topic.isUnused else { return false }
            topics[topic.name] = nil
            return true
        }
        if retired {
            broker.unsubscribe(topic: topic.name, sink: topic)
            presenceWatchers.removeAll(topic: topic.name)
        }
    }
}
