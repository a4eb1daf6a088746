import Synchronization

/// Server-wide message counters, updated lock-free from any thread. The atomics are stored in
/// the object itself (a `ManagedAtomic` is an object of its own: a retain, a release and an
/// indirect call around every increment on the publish path).
public final class BrokerCounters: Sendable {
    /// Publications of the topics deleted so far. A live topic counts its own, as its `seq`
    /// (under its lock): a shared counter bumped by every publish would be an atomic
    /// read-modify-write, and a contended cache line, per message.
    let publishedByDeletedTopics = Atomic<Int>(0)
    let delivered = Atomic<Int>(0)
    let dropped = Atomic<Int>(0)

    public init() {}

    /// Messages published since the start: what the topics deleted so far had published, then
    /// the live topics' own, as `liveTopics` lists them (the broker's `topics()`). In that
    /// order: a topic is taken out of the registry before its count moves here, so one deleted
    /// meanwhile is left out of this answer rather than counted twice, and the total never
    /// goes down from one answer to the next.
    public func publishedCount(liveTopics: () -> [TopicSnapshot]) -> Int {
        let deleted = publishedByDeletedTopics.load(ordering: .relaxed)
        return liveTopics().reduce(deleted) { $0 + Int(clamping: $1.messageCount) }
    }
    public var deliveredCount: Int { delivered.load(ordering: .relaxed) }
    public var droppedCount: Int { dropped.load(ordering: .relaxed) }

    /// Called by a connection's writer with the number of events it handed to the socket.
    public func recordDelivered(_ count: Int) {
        delivered.wrappingAdd(count, ordering: .relaxed)
    }
}

/// Counters of one topic that any queue may bump (drops happen on the subscriber's side).
public final class TopicCounters: Sendable {
    let dropped = Atomic<Int>(0)
    public init() {}
    public var droppedCount: Int { dropped.load(ordering: .relaxed) }
}
