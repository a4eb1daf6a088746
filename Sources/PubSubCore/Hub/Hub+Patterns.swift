import NIOCore

/// Wildcard subscriptions (SPEC 9). A pattern's subscriber joins, as a live subscriber with
/// no ack and no replay, each topic the pattern matches: those that exist when it subscribes,
/// and those the engine announces later (``TopicWatcher``). So its events are the topic's own
/// frames, encoded once for all its subscribers, and a publish to a topic no pattern matches
/// goes the way it always did. A connection in a topic by name and through a pattern, or
/// through several patterns, is in it once and gets each event once.
extension Hub: TopicWatcher {
    /// Whether `text` is meant as a pattern: names cannot hold `*` or `>`, so any text that
    /// does is a pattern or invalid (and the pattern's parser says why).
    static func looksLikePattern(_ text: String) -> Bool {
        text.utf8.contains { $0 == UInt8(ascii: "*") || $0 == UInt8(ascii: ">") }
    }

    /// Subscribes `subscriber` to every topic `text` matches, now and later; queues `ack`'s
    /// frame (`pattern` set) ahead of any of their events. Idempotent.
    func subscribe(
        _ subscriber: Subscriber, pattern text: String, replay: ReplayRequest,
        ack: @escaping @Sendable (SubscribeReceipt) -> ByteBuffer
    ) -> BrokerAnswer<SubscribeReceipt> {
        let pattern: TopicPattern
        do { pattern = try TopicPattern.validate(text) } catch { return .failure(error) }
        guard replay == .none else {
            return .failure(.badRequest("last_n and since do not apply to a pattern: each topic it matches has its own seq"))
        }
        if patterns.has(text, for: subscriber) {
            let receipt = Self.receipt(text, patterns.count(of: text))
            subscriber.enqueue(.frame(ack(receipt)))
            return .success(receipt)
        }
        // The engine watches the prefix before the ack: a topic made after it is announced.
        let watched = patterns.retainPrefix(of: pattern) ? rewatch() : .success(())
        let answer = watched
            .then { self.broker.topics() }
            .then { before -> BrokerAnswer<SubscribeReceipt> in
                let change: PatternRegistry.Change
                do throws(PubSubError) {
                    change = try self.patterns.add(pattern, for: subscriber) { change in
                        subscriber.enqueue(.frame(ack(Self.receipt(text, change.count))))
                    }
                } catch {
                    return .failure(error)
                }
                let receipt = Self.receipt(text, change.count)
                // Added meanwhile by another subscribe of this connection's: that one counts the prefix.
                if !change.changed {
                    _ = self.patterns.releasePrefix(of: pattern)
                    return .success(receipt)
                }
                // The topics there are, from where they were before the ack (those made since
                // from their start): the events published meanwhile are replayed, not lost.
                let seen = Dictionary(before.lazy.filter { pattern.matches($0.name) }.map { ($0.name, $0) }) { first, _ in first }
                return self.broker.topics().map { topics in
                    for topic in topics where pattern.matches(topic.name) {
                        let since = seen[topic.name].map { $0.epoch == topic.epoch ? $0.seq : 0 } ?? 0
                        self.follow(topic.name, for: [subscriber], after: since)
                    }
                    return receipt
                }
            }
        answer.whenFailed {
            var orphaned: [String] = []
            if self.patterns.remove(pattern, for: subscriber, orphaned: &orphaned).changed { self.leave(orphaned, subscriber) }
            if self.patterns.releasePrefix(of: pattern) { _ = self.rewatch() }
        }
        return answer
    }

    /// Tells the engine the prefixes the patterns need now.
    private func rewatch() -> BrokerAnswer<Void> {
        patterns.watching.withLock(of: patterns) { told in
            told &+= 1
            return broker.watchTopics(prefixes: patterns.watchedPrefixes, watcher: self)
        }
    }

    /// Takes `subscriber` out of `names`' topics.
    private func leave(_ names: [String], _ subscriber: Subscriber) {
        for name in names {
            guard let topic = topics.withLock(of: self, { $0[name] }) else { continue }
            topic.remove(subscriber)
            retireIfUnused(topic)
        }
    }

    private static func receipt(_ pattern: String, _ count: Int) -> SubscribeReceipt {
        var receipt = SubscribeReceipt(topic: pattern, subscriberCount: count, seq: 0, epoch: "", replayed: 0, recovered: nil)
        receipt.pattern = true
        return receipt
    }

    /// Unsubscribes a pattern (idempotent): the connection leaves the topics it was in through
    /// it alone, then `ack`'s frame is queued, given this node's subscribers of the pattern.
    func unsubscribe(_ subscriber: Subscriber, pattern text: String, ack: @escaping @Sendable (Int) -> ByteBuffer) -> BrokerAnswer<Int> {
        let pattern: TopicPattern
        do { pattern = try TopicPattern.validate(text) } catch { return .failure(error) }
        var orphaned: [String] = []
        let change = patterns.remove(pattern, for: subscriber, orphaned: &orphaned)
        if change.changed {
            leave(orphaned, subscriber)
            if patterns.releasePrefix(of: pattern) { _ = rewatch() }
        }
        subscriber.enqueue(.frame(ack(change.count)))
        return .success(change.count)
    }

    /// Forgets a connection's patterns (it has gone; its topics are left by the caller).
    func unsubscribePatterns(_ subscriber: Subscriber) {
        var released = false
        for pattern in patterns.removeAll(for: subscriber) where patterns.releasePrefix(of: pattern) { released = true }
        if released { _ = rewatch() }
    }

    public func topicAppeared(_ topic: String, after seq: UInt64) {
        let subscribers = patterns.subscribers(of: topic)
        if !subscribers.isEmpty { follow(topic, for: subscribers, after: seq) }
    }

    /// A topic this node just began to follow for a subscriber by name: the patterns that
    /// match it join too, from now on.
    func followPatterns(_ topic: String) {
        let subscribers = patterns.subscribers(of: topic)
        if !subscribers.isEmpty { follow(topic, for: subscribers, after: nil) }
    }

    /// Joins `subscribers` to `name` through their patterns: with the publications after
    /// `seq` replayed (those the engine may have had before this node followed the topic),
    /// or from now on. Already in it (by name or another pattern): nothing changes.
    private func follow(_ name: String, for subscribers: [Subscriber], after seq: UInt64?) {
        let replay: ReplayRequest = seq.map { .since($0, epoch: nil) } ?? .none
        for subscriber in subscribers {
            guard case .success((let topic, .joining)) = beginJoin(subscriber, topic: name, counted: false) else { continue }
            patterns.joinedThroughPattern(subscriber, topic: name)
            _ = completeJoin(subscriber, topic, replay: replay, presence: false, ack: nil)
        }
    }
}
