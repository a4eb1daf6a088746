import NIOCore
import PubSubCore
import RedisClient

/// The node's subscriptions: a feed per topic with local subscribers, fed from its channel,
/// caught up from the history after the link to Redis was lost.
extension RedisBroker {
    public func subscribe(topic name: String, sink: any TopicSink) -> BrokerAnswer<UInt64> {
        do { try TopicName.validate(name) } catch { return .failure(error) }
        let feed = RedisTopicFeed(name: name, sink: sink)
        let channel = keys.events(name)
        let subscribed: EventLoopFuture<Void>? = feeds.withLock(of: self) { feeds in
            guard let connection = subscriptions.current else { return nil }
            feeds[name] = feed
            return connection.subscribe([channel])
        }
        guard let subscribed else { return .failure(Self.notConnected) }
        let maxTopics = configuration.maxTopics
        let autoCreate = configuration.autoCreateTopics
        let epoch = newEpoch()
        let future = bounded(subscribed)
            .flatMap { _ in
                self.run(
                    RedisScripts.ensure, keys: [.string(self.keys.topics), .string(self.keys.topic(name))],
                    arguments: [
                        .string(name), .integer(WallClock.nowMillis()), .string(epoch), .integer(Int64(maxTopics)), "ensure",
                        autoCreate ? "1" : "0",
                    ]
                )
            }
            .hop(to: loop)
            .flatMapThrowing { value throws in
                let answer = try Self.array(value)
                switch answer.first?.int {
                case -1: throw PubSubError.topicNotFound(name)
                case -2: throw Self.topicLimit(maxTopics)
                case let seq? where seq >= 0:
                    guard answer.count == 2, let epoch = answer[1].string else { throw Self.malformed(value) }
                    return feed.start(at: UInt64(seq), epoch: epoch)
                default:
                    throw Self.malformed(value)
                }
            }
        return .later(future)
    }

    public func unsubscribe(topic name: String, sink: any TopicSink) {
        let channel = keys.events(name)
        feeds.withLock(of: self) { feeds in
            if let feed = feeds[name] {
                guard feed.sink === sink else { return }  // a newer subscription's
                feeds[name] = nil
            }
            // (Its answer does not matter: a connection that is down has no subscriptions.)
            _ = subscriptions.current?.unsubscribe([channel])
        }
    }

    // MARK: the engine's loop

    /// A message on a topic's channel (on the engine's loop, in the order Redis sent them).
    func received(channel: ByteBuffer, payload: ByteBuffer) {
        guard let name = keys.topicName(ofChannel: String(buffer: channel)),
            let feed = feeds.withLock(of: self, { $0[name] }), !feed.ended
        else { return }
        if payload.readableBytesView.first == UInt8(ascii: "R") { return receivedPresence(payload, feed: feed) }
        guard let message = ChannelMessage(payload) else { return }
        switch message {
        case .deleted(let epoch):
            if feed.epoch == nil || feed.epoch == epoch { end(feed) }
        case .published(let epoch, let records):
            if let known = feed.epoch, known != epoch {
                // Another incarnation of the topic: the one this feed followed was deleted
                // while the link was down.
                end(feed)
                return
            }
            feed.epoch = epoch
            if feed.catchingUp {
                feed.hold(records)
            } else if !feed.deliver(records) {
                feed.hold(records)
                catchUp(feed)
            }
        }
    }

    /// A new subscription connection: subscribes the channels of every feed again, then
    /// brings each feed up to date from the history.
    func resubscribe(_ connection: RedisSubscriptionConnection) {
        let (subscribed, current) = feeds.withLock(of: self) { feeds in
            _ = connection.psubscribe(watch.prefixes.map(eventsGlob))
            return (connection.subscribe(feeds.keys.map(keys.events)), Array(feeds.values))
        }
        // The channels are subscribed once their confirmations are in: what is published
        // after that comes on them, what came before is read now.
        subscribed.hop(to: loop).whenComplete { _ in
            for feed in current { self.catchUp(feed) }
        }
    }

    /// Reads from the history what the feed has not had and hands it on; tells the sink how
    /// many are no longer retained. Then what came on the channel meanwhile.
    func catchUp(_ feed: RedisTopicFeed) {
        loop.preconditionInEventLoop()
        guard !feed.ended, feeds.withLock(of: self, { $0[feed.name] }) === feed else { return }
        if feed.catchingUp {
            feed.catchUpAgain = true
            return
        }
        guard let since = feed.lastSeq else {
            // Nothing handed on yet and no position: nothing can be missing.
            for records in feed.takeWaiting() { _ = feed.deliver(records) }
            return
        }
        feed.catchingUp = true
        readHistory(feed.name, .after(since)).hop(to: loop).whenComplete { result in
            feed.catchingUp = false
            switch result {
            case .success(nil):
                self.end(feed)
                return
            case .success(let read?):
                if read.epoch != feed.epoch || read.seq < since {
                    // Deleted and made again, or Redis lost what it had: this incarnation is gone.
                    self.end(feed)
                    return
                }
                let first = read.records.first?.seq ?? read.seq + 1
                if first > since + 1 {
                    feed.sink.missed(Int(first - since - 1))
                    feed.lastSeq = first - 1
                }
                _ = feed.deliver(read.records)
                var gap = false
                for records in feed.takeWaiting() where !gap {
                    gap = !feed.deliver(records)
                }
                if gap || feed.catchUpAgain {
                    feed.catchUpAgain = false
                    self.catchUp(feed)
                }
            case .failure:
                // Redis is out of reach again: a new subscription connection starts another
                // catch-up; until then, try again in a while.
                self.loop.scheduleTask(in: .seconds(1)) { self.catchUp(feed) }
            }
        }
    }

    /// The topic this feed followed is gone: its sink is told, and the feed forgotten.
    func end(_ feed: RedisTopicFeed) {
        guard !feed.ended else { return }
        feed.ended = true
        _ = feed.takeWaiting()
        feeds.withLock(of: self) { feeds in
            if feeds[feed.name] === feed { feeds[feed.name] = nil }
        }
        forgetPresence(of: feed.name)
        // The hub unsubscribes it (the channel with it) when it retires the topic.
        feed.sink.topicDeleted()
    }
}
