import Synchronization

/// This node's delivery counters, updated lock-free from any thread. The atomics are stored in
/// the object itself: a `ManagedAtomic` would be an object of its own, one more indirection
/// around every increment on the fan-out path.
public final class HubCounters: Sendable {
    let delivered = Atomic<Int>(0)
    let dropped = Atomic<Int>(0)

    public init() {}

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
    /// Its deliveries' latency (the writers record; `/api/stats` reads).
    public let latency = TopicLatency()
    public init() {}
    public var droppedCount: Int { dropped.load(ordering: .relaxed) }
}
