import Atomics

/// Server-wide message counters, updated lock-free from any thread.
public final class BrokerCounters: Sendable {
    let published = ManagedAtomic<Int>(0)
    let delivered = ManagedAtomic<Int>(0)
    let dropped = ManagedAtomic<Int>(0)

    public init() {}

    public var publishedCount: Int { published.load(ordering: .relaxed) }
    public var deliveredCount: Int { delivered.load(ordering: .relaxed) }
    public var droppedCount: Int { dropped.load(ordering: .relaxed) }

    /// Called by a connection's writer with the number of events it handed to the socket.
    public func recordDelivered(_ count: Int) {
        delivered.wrappingIncrement(by: count, ordering: .relaxed)
    }
}

/// Counters of one topic that any queue may bump (drops happen on the subscriber's side).
public final class TopicCounters: Sendable {
    let dropped = ManagedAtomic<Int>(0)
    public init() {}
    public var droppedCount: Int { dropped.load(ordering: .relaxed) }
}
