import NIOCore
import Synchronization

/// Presence (SPEC 9): every subscription is an entry of its topic's list in the engine,
/// joined before its ack and left with its unsubscribe (or its connection's close); the
/// subscribers that ask are sent the list's diffs. All of it happens on subscribe and
/// unsubscribe: publishing does no presence work.
extension Hub {
    /// Adds `subscriber` to `name`'s presence list (a subscribe, before its ack).
    func joinPresence(_ subscriber: Subscriber, topic name: String) -> BrokerAnswer<Void> {
        broker.joinPresence(
            topic: name, entry: PresenceEntry(clientID: subscriber.clientID, user: subscriber.user, joinedAtMillis: WallClock.nowMillis())
        )
    }

    /// Takes `subscriber` out of `name`'s list and its diffs (idempotent).
    func leavePresence(_ subscriber: Subscriber, topic name: String) {
        presenceWatchers.remove(subscriber, topic: name)
        broker.leavePresence(topic: name, clientID: subscriber.clientID)
    }

    /// Sends `subscriber`, subscribed to `name`, its presence: first a diff whose `joins` are
    /// the whole current list (as Phoenix's `presence_state`), then each change, all framed by
    /// `encode` and queued as replies are (never dropped). Diffs that come while the list is
    /// read are held and follow it; one that repeats what the list holds changes nothing for a
    /// client that applies them by client id. Idempotent: a watcher already there is left.
    public func watchPresence(
        _ subscriber: Subscriber, topic name: String, encode: @escaping @Sendable (PresenceDiff) -> ByteBuffer
    ) -> BrokerAnswer<Void> {
        guard presenceWatchers.add(subscriber, topic: name, encode: encode) else { return .success(()) }
        // Left (or never got in) meanwhile: nothing would take the watcher out.
        guard subscriber.topicNames.contains(name) else {
            presenceWatchers.remove(subscriber, topic: name)
            return .success(())
        }
        let watchers = presenceWatchers
        let answer = broker.presence(topic: name)
        switch answer {
        case .now(.success(let list)): watchers.release(subscriber, with: PresenceDiff(topic: name, joins: list))
        case .now(.failure): watchers.remove(subscriber, topic: name)
        case .later(let future):
            future.whenComplete { result in
                switch result {
                case .success(let list): watchers.release(subscriber, with: PresenceDiff(topic: name, joins: list))
                case .failure: watchers.remove(subscriber, topic: name)
                }
            }
        }
        return answer.map { _ in () }
    }
}

extension HubTopic {
    public func presenceChanged(_ diff: PresenceDiff) {
        hub?.presenceWatchers.deliver(diff)
    }
}

/// This node's subscribers that asked for presence diffs, by topic, with how each frames them.
final class PresenceWatchers: Sendable {
    private struct Watcher {
        let subscriber: Subscriber
        let encode: @Sendable (PresenceDiff) -> ByteBuffer
        /// Diffs that came before its list was queued; nil once it was.
        var held: [PresenceDiff]? = []
    }

    private struct State {
        var byTopic: [String: [ObjectIdentifier: Watcher]] = [:]
        /// The topics each subscriber watches, so a closing connection is found at once.
        var bySubscriber: [ObjectIdentifier: Set<String>] = [:]
    }

    private let state = Mutex(State())

    /// Adds a watcher whose diffs are held until ``release(_:with:)``; false when it is there.
    func add(_ subscriber: Subscriber, topic: String, encode: @escaping @Sendable (PresenceDiff) -> ByteBuffer) -> Bool {
        let key = ObjectIdentifier(subscriber)
        return state.withLock(of: self) { state in
            if state.byTopic[topic]?[key] != nil { return false }
            state.byTopic[topic, default: [:]][key] = Watcher(subscriber: subscriber, encode: encode)
            state.bySubscriber[key, default: []].insert(topic)
            return true
        }
    }

    /// Queues the watcher's first diff (the list), then what was held for it.
    func release(_ subscriber: Subscriber, with initial: PresenceDiff) {
        let key = ObjectIdentifier(subscriber)
        state.withLock(of: self) { state in
            guard let watcher = state.byTopic[initial.topic]?[key], let held = watcher.held else { return }
            subscriber.enqueue(.frame(watcher.encode(initial)))
            for diff in held { subscriber.enqueue(.frame(watcher.encode(diff))) }
            state.byTopic[initial.topic]![key]!.held = nil
        }
    }

    /// Queues `diff` for its topic's watchers (held for those whose list is being read).
    func deliver(_ diff: PresenceDiff) {
        state.withLock(of: self) { state in
            guard let watchers = state.byTopic[diff.topic] else { return }
            for (key, watcher) in watchers {
                // Its own join is in its first list (it joined before it watched); with an
                // engine behind the network it may arrive after that list, and says nothing new.
                var diff = diff
                if diff.joins.contains(where: { $0.clientID == watcher.subscriber.clientID }) {
                    diff = PresenceDiff(topic: diff.topic, joins: diff.joins.filter { $0.clientID != watcher.subscriber.clientID }, leaves: diff.leaves)
                    if diff.joins.isEmpty && diff.leaves.isEmpty { continue }
                }
                if watcher.held != nil {
                    state.byTopic[diff.topic]![key]!.held!.append(diff)
                } else {
                    watcher.subscriber.enqueue(.frame(watcher.encode(diff)))
                }
            }
        }
    }

    func remove(_ subscriber: Subscriber, topic: String) {
        let key = ObjectIdentifier(subscriber)
        state.withLock(of: self) { state in
            guard state.byTopic[topic]?.removeValue(forKey: key) != nil else { return }
            if state.byTopic[topic]!.isEmpty { state.byTopic[topic] = nil }
            state.bySubscriber[key]?.remove(topic)
            if state.bySubscriber[key]?.isEmpty == true { state.bySubscriber[key] = nil }
        }
    }

    /// Every watcher of a subscriber (its connection closed).
    func removeAll(_ subscriber: Subscriber) {
        let key = ObjectIdentifier(subscriber)
        state.withLock(of: self) { state in
            for topic in state.bySubscriber.removeValue(forKey: key) ?? [] {
                state.byTopic[topic]?.removeValue(forKey: key)
                if state.byTopic[topic]?.isEmpty == true { state.byTopic[topic] = nil }
            }
        }
    }

    /// Every watcher of a topic nobody on this node is subscribed to any more (or deleted).
    func removeAll(topic: String) {
        state.withLock(of: self) { state in
            guard let removed = state.byTopic.removeValue(forKey: topic) else { return }
            for key in removed.keys {
                state.bySubscriber[key]?.remove(topic)
                if state.bySubscriber[key]?.isEmpty == true { state.bySubscriber[key] = nil }
            }
        }
    }
}
