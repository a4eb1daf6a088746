import NIOCore
import PubSubCore
import RedisClient

/// Topics this node does not follow, for its wildcard subscriptions (SPEC 9): a `PSUBSCRIBE`
/// on the channels of each watched prefix. The first publication that comes through it for
/// a topic without a feed is announced to the watcher, which subscribes the topic (its own
/// channel, then) and reads from the history what came before. Channels with a feed come
/// through their `SUBSCRIBE`; their pattern messages are ignored.
extension RedisBroker {
    public func watchTopics(prefixes: Set<String>, watcher: any TopicWatcher) -> BrokerAnswer<Void> {
        // Under the feeds' lock: commands reach Redis in the order the registry changed.
        let subscribed: EventLoopFuture<Void>? = feeds.withLock(of: self) { _ in
            let old = watch.prefixes
            watch.set(prefixes: prefixes, watcher: watcher)
            // Without a connection, the next one subscribes what is watched then.
            guard let connection = subscriptions.current else { return nil }
            _ = connection.punsubscribe(old.subtracting(prefixes).map(eventsGlob))
            return connection.psubscribe(prefixes.subtracting(old).map(eventsGlob))
        }
        guard let subscribed else { return prefixes.isEmpty ? .success(()) : .failure(Self.notConnected) }
        return .later(bounded(subscribed).hop(to: loop))
    }

    /// The glob of the channels of the topics whose names begin with `prefix` (Redis's glob
    /// characters escaped: a cluster prefix may hold them).
    func eventsGlob(_ prefix: String) -> String {
        var glob = ""
        for character in keys.eventsPrefix + prefix {
            if "*?[]\\^".contains(character) { glob.append("\\") }
            glob.append(character)
        }
        return glob + "*"
    }

    /// A message on a channel matched by a watched prefix (on the engine's loop).
    func receivedThroughPattern(channel: ByteBuffer, payload: ByteBuffer) {
        guard let name = keys.topicName(ofChannel: String(buffer: channel)), feeds.withLock(of: self, { $0[name] }) == nil,
            let watcher = watch.watcher(of: name), case .published(_, let records)? = ChannelMessage(payload),
            let first = records.first
        else { return }
        watcher.topicAppeared(name, after: first.seq - 1)
    }
}
