/// What a full outbound queue does with the next publication (SPEC 2.4).
///
///     let limits = QueueLimits(maxMessages: 1_000, maxBytes: 4 << 20, policy: .dropOldest)
public enum BackpressurePolicy: String, Sendable, CaseIterable {
    /// Evict the oldest queued publication to make room (default).
    case dropOldest = "drop-oldest"
    /// Refuse the new publication; what is queued stays.
    case dropNewest = "drop-newest"
    /// Tell the client `SLOW_CONSUMER` and close its connection with 1008.
    case disconnect
}

/// Bounds of one connection's outbound queue: whichever limit is reached first applies.
public struct QueueLimits: Sendable, Equatable {
    public var maxMessages: Int
    public var maxBytes: Int
    public var policy: BackpressurePolicy

    public init(maxMessages: Int = 1_000, maxBytes: Int = 4 * 1024 * 1024, policy: BackpressurePolicy = .dropOldest) {
        // Not clamped: the server's configuration refuses values out of range at start.
        self.maxMessages = maxMessages
        self.maxBytes = maxBytes
        self.policy = policy
    }
}
