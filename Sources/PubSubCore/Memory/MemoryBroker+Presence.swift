import Synchronization

/// The in-memory engine's presence: each topic's entries by client id. Diffs are handed to
/// the topic's sink under this lock, so they reach the node in the order the list changed.
final class MemoryPresence: Sendable {
    private let topics = Mutex<[String: [String: PresenceEntry]]>([:])

    func removeAll(topic: String) {
        topics.withLock(of: self) { _ = $0.removeValue(forKey: topic) }
    }

    func withTopics<Result: Sendable>(_ body: (inout [String: [String: PresenceEntry]]) throws(PubSubError) -> Result) throws(PubSubError) -> Result {
        try topics.withLock(of: self) { topics throws(PubSubError) in try body(&topics) }
    }
}

/// Presence on one node: the list lives beside the topics, and goes with a deleted topic.
extension MemoryBroker {
    public func joinPresence(topic name: String, entry: PresenceEntry) -> BrokerAnswer<Void> {
        .now(
            Result { () throws(PubSubError) in
                let topic = try lookup(name, create: false)
                try presence.withTopics { topics throws(PubSubError) in
                    // Deleted since it was found: its list went with it.
                    guard (try? lookup(name, create: false)) === topic else { throw .topicNotFound(name) }
                    let replaced = topics[name, default: [:]].updateValue(entry, forKey: entry.clientID)
                    guard replaced != entry else { return }
                    topic.currentSink?.presenceChanged(PresenceDiff(topic: name, joins: [entry], leaves: replaced.map { [$0] } ?? []))
                }
            }
        )
    }

    public func leavePresence(topic name: String, clientID: String) {
        try? presence.withTopics { topics in
            guard let left = topics[name]?.removeValue(forKey: clientID) else { return }
            if topics[name]?.isEmpty == true { topics[name] = nil }
            (try? lookup(name, create: false))?.currentSink?.presenceChanged(PresenceDiff(topic: name, leaves: [left]))
        }
    }

    public func presence(topic name: String) -> BrokerAnswer<[PresenceEntry]> {
        .now(
            Result { () throws(PubSubError) in
                _ = try lookup(name, create: false)
                return try presence.withTopics { topics in Array(topics[name, default: [:]].values) }.presenceOrdered()
            }
        )
    }
}
