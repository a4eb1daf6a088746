import Synchronization

/// This node's wildcard subscriptions (SPEC 9): the patterns in a ``SubjectTree``, and per
/// connection the topics it is in through a pattern only (not subscribed by name), so that
/// unsubscribing a pattern leaves the topics it also subscribed by name, and unsubscribing a
/// name leaves a topic a pattern still matches. A leaf lock: nothing else is locked under it
/// but a subscriber's queue.
final class PatternRegistry: Sendable {
    /// A subscriber as a tree value: equal by identity.
    struct Member: Hashable, Sendable {
        let subscriber: Subscriber
        static func == (a: Member, b: Member) -> Bool { a.subscriber === b.subscriber }
        func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(subscriber)) }
    }

    private struct Connection {
        var patterns: [String: TopicPattern] = [:]
        var throughPatternOnly: Set<String> = []
    }

    private struct State {
        var tree = SubjectTree<Member>()
        var connections: [ObjectIdentifier: Connection] = [:]
        /// Subscribers per pattern text, for acks.
        var counts: [String: Int] = [:]
        /// How many patterns have each literal prefix: what the engine is asked to watch.
        var prefixes: [String: Int] = [:]
    }

    private let state = Mutex(State())
    /// Whether any pattern is held, read without the lock: connections without patterns
    /// (and nodes without any) skip the bookkeeping.
    private let active = Atomic<Bool>(false)

    /// What a change did.
    struct Change {
        /// Whether the pattern was added or removed (false: it was there, or was not).
        var changed: Bool
        /// This node's subscribers of the pattern after.
        var count: Int
    }

    /// Adds `pattern` for `subscriber`, and runs `then` (its ack) under the lock, before any
    /// topic the pattern matches can hand it an event; throws past the connection's limit.
    func add(_ pattern: TopicPattern, for subscriber: Subscriber, then: (Change) -> Void) throws(PubSubError) -> Change {
        try state.withLock(of: self) { state throws(PubSubError) -> Change in
            let key = ObjectIdentifier(subscriber)
            let text = pattern.description
            var change = Change(changed: false, count: state.counts[text] ?? 0)
            if state.connections[key]?.patterns[text] == nil {
                let maximum = subscriber.maxSubscriptions
                if maximum > 0 && (state.connections[key]?.patterns.count ?? 0) >= maximum {
                    throw .limitExceeded(
                        "max_subscriptions_per_connection", maximum: maximum,
                        "this connection is subscribed to its limit of \(maximum) patterns"
                    )
                }
                state.connections[key, default: Connection()].patterns[text] = pattern
                state.tree.insert(pattern, Member(subscriber: subscriber))
                state.counts[text, default: 0] += 1
                change = Change(changed: true, count: state.counts[text]!)
                active.store(true, ordering: .relaxed)
            }
            then(change)
            return change
        }
    }

    /// Takes `pattern` away from `subscriber`; `orphaned` gets the topics it was in through
    /// that pattern alone (to leave).
    func remove(_ pattern: TopicPattern, for subscriber: Subscriber, orphaned: inout [String]) -> Change {
        state.withLock(of: self) { state in
            let key = ObjectIdentifier(subscriber)
            let text = pattern.description
            guard state.connections[key]?.patterns.removeValue(forKey: text) != nil else {
                return Change(changed: false, count: state.counts[text] ?? 0)
            }
            let change = Self.forget(pattern, of: subscriber, in: &state)
            let left = state.connections[key]!
            let kept = left.throughPatternOnly.filter { topic in left.patterns.values.contains { $0.matches(topic) } }
            orphaned = Array(left.throughPatternOnly.subtracting(kept))
            if left.patterns.isEmpty {
                state.connections[key] = nil
            } else {
                state.connections[key]!.throughPatternOnly = kept
            }
            active.store(!state.connections.isEmpty, ordering: .relaxed)
            return change
        }
    }

    /// Takes every pattern away from a connection that has gone; returns them.
    func removeAll(for subscriber: Subscriber) -> [TopicPattern] {
        guard active.load(ordering: .relaxed) else { return [] }
        return state.withLock(of: self) { state in
            guard let connection = state.connections.removeValue(forKey: ObjectIdentifier(subscriber)) else { return [] }
            for pattern in connection.patterns.values { _ = Self.forget(pattern, of: subscriber, in: &state) }
            active.store(!state.connections.isEmpty, ordering: .relaxed)
            return Array(connection.patterns.values)
        }
    }

    /// Out of the tree and the counts (the connection's own record is the caller's).
    private static func forget(_ pattern: TopicPattern, of subscriber: Subscriber, in state: inout State) -> Change {
        let text = pattern.description
        state.tree.remove(pattern, Member(subscriber: subscriber))
        state.counts[text, default: 1] -= 1
        if state.counts[text] == 0 { state.counts[text] = nil }
        return Change(changed: true, count: state.counts[text] ?? 0)
    }

    // MARK: what the engine watches

    /// Counts a pattern's literal prefix in, before the pattern is added (the engine watches
    /// it first); true when the prefix is new.
    func retainPrefix(of pattern: TopicPattern) -> Bool {
        state.withLock(of: self) { state in
            state.prefixes[pattern.literalPrefix, default: 0] += 1
            return state.prefixes[pattern.literalPrefix] == 1
        }
    }

    /// Counts a pattern's prefix out; true when no pattern has it any more.
    func releasePrefix(of pattern: TopicPattern) -> Bool {
        state.withLock(of: self) { state in
            state.prefixes[pattern.literalPrefix, default: 1] -= 1
            guard state.prefixes[pattern.literalPrefix] == 0 else { return false }
            state.prefixes[pattern.literalPrefix] = nil
            return true
        }
    }

    /// The prefixes to watch now.
    var watchedPrefixes: Set<String> { state.withLock(of: self) { Set($0.prefixes.keys) } }

    /// Held while the engine is told the prefixes: calls in the order the counts changed. It
    /// counts them: a `Mutex<()>` as an object's last stored property has its empty value one
    /// past the object's end, where ThreadSanitizer saw its `inout` access touch the next heap
    /// block and reported a race with whatever lived there (a fresh-clone CI run).
    let watching = Mutex<UInt64>(0)

    /// The subscribers with a pattern that matches `topic`.
    func subscribers(of topic: String) -> [Subscriber] {
        guard active.load(ordering: .relaxed) else { return [] }
        return state.withLock(of: self) { state in state.tree.matches(topic).map(\.subscriber) }
    }

    /// This node's subscribers of `pattern`.
    func count(of pattern: String) -> Int {
        state.withLock(of: self) { $0.counts[pattern] ?? 0 }
    }

    /// Whether the subscriber has `pattern`.
    func has(_ pattern: String, for subscriber: Subscriber) -> Bool {
        state.withLock(of: self) { $0.connections[ObjectIdentifier(subscriber)]?.patterns[pattern] != nil }
    }

    /// The subscriber joined `topic` through one of its patterns (not by name).
    func joinedThroughPattern(_ subscriber: Subscriber, topic: String) {
        state.withLock(of: self) { state in
            _ = state.connections[ObjectIdentifier(subscriber)]?.throughPatternOnly.insert(topic)
        }
    }

    /// The subscriber subscribed `topic` by name: a pattern's unsubscribe no longer takes it out.
    /// True when it was in the topic through a pattern only, until now.
    @discardableResult
    func markDirect(_ subscriber: Subscriber, topic: String) -> Bool {
        guard active.load(ordering: .relaxed) else { return false }
        return state.withLock(of: self) { state in
            state.connections[ObjectIdentifier(subscriber)]?.throughPatternOnly.remove(topic) != nil
        }
    }

    /// The subscriber unsubscribes `topic` by name: true (and it stays, through the pattern
    /// only) when one of its patterns matches it.
    func keepsThroughPattern(_ subscriber: Subscriber, topic: String) -> Bool {
        guard active.load(ordering: .relaxed) else { return false }
        return state.withLock(of: self) { state in
            let key = ObjectIdentifier(subscriber)
            guard let connection = state.connections[key], connection.patterns.values.contains(where: { $0.matches(topic) }) else {
                return false
            }
            state.connections[key]!.throughPatternOnly.insert(topic)
            return true
        }
    }
}
