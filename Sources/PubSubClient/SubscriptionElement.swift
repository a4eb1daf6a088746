/// One element of a subscription's sequence: a message, or the notice that some are lost.
///
/// ```swift
/// for try await element in try await client.subscribe("orders", from: .lastN(5)) {
///     switch element {
///     case .event(let event): print(event.seq, event.payload)
///     case .gap(let gap): print("lost", gap)
///     }
/// }
/// ```
public enum SubscriptionElement: Sendable, Hashable {
    case event(PubSubEvent)
    case gap(PubSubGap)
}

/// A message delivered to a subscription. Within one ``epoch`` the seqs only grow, and none
/// comes twice.
///
/// ```swift
/// if case .event(let event) = element {
///     print(event.topic, event.seq, event.id, event.payload.text)
/// }
/// ```
public struct PubSubEvent: Sendable, Hashable {
    /// The topic it was published to (the concrete topic when the subscription is a pattern).
    public let topic: String
    /// Its sequence number in the topic (+1 per message, from 1).
    public let seq: Int
    /// The topic's epoch the seq belongs to; nil for a pattern subscription's events.
    public let epoch: String?
    /// The message id, the publisher's or a UUID the server gave it.
    public let id: String
    /// The payload, as it was published.
    public let payload: RawJSON
    /// When the publish reached the server (ISO-8601 UTC, milliseconds), as the server wrote it.
    public let timestamp: String

    public init(topic: String, seq: Int, epoch: String?, id: String, payload: RawJSON, timestamp: String) {
        self.topic = topic
        self.seq = seq
        self.epoch = epoch
        self.id = id
        self.payload = payload
        self.timestamp = timestamp
    }
}

/// Messages of a topic the subscription will never deliver: the server no longer retained
/// them when the client came back, a slow connection's queue dropped them, or the topic's
/// epoch changed (the topic was recreated, or the server restarted without it).
///
/// Two cases, told apart by ``previousEpoch``:
/// - same epoch: the seqs ``missing`` of ``epoch`` are lost;
/// - new epoch (``previousEpoch`` is set): every message after ``previousSeq`` in
///   ``previousEpoch`` is lost, and in the new ``epoch`` the seqs ``missing`` (nil when the
///   new epoch's history still holds all of them).
///
/// A pattern subscription's gap has only ``topic`` (the pattern): what matched it while the
/// client was away is unknown, since the server keeps no history across topics.
///
/// ```swift
/// if case .gap(let gap) = element, let missing = gap.missing {
///     print("lost \(gap.topic) seqs \(missing.lowerBound) to \(missing.upperBound)")
/// }
/// ```
public struct PubSubGap: Sendable, Hashable {
    /// The topic (or the pattern) of the subscription.
    public let topic: String
    /// The epoch the events that follow belong to.
    public let epoch: String?
    /// The seqs of ``epoch`` that are lost, inclusive; nil when none of it.
    public let missing: ClosedRange<Int>?
    /// When the epoch changed: the one the subscription was in before.
    public let previousEpoch: String?
    /// When the epoch changed: the last seq delivered in ``previousEpoch``.
    public let previousSeq: Int?

    public init(topic: String, epoch: String?, missing: ClosedRange<Int>?, previousEpoch: String? = nil, previousSeq: Int? = nil) {
        self.topic = topic
        self.epoch = epoch
        self.missing = missing
        self.previousEpoch = previousEpoch
        self.previousSeq = previousSeq
    }

    /// Whether the topic's epoch changed (everything after ``previousSeq`` of the old one is lost).
    public var epochChanged: Bool { previousEpoch != nil }
}
