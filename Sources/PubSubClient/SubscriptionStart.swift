/// Where a subscription starts: the live stream, the last few retained messages, or right after
/// a seq the application saw before (SPEC 2.1's `last_n` and `since` + `epoch`).
///
/// ```swift
/// let live = try await client.subscribe("orders")                          // .latest
/// let recent = try await client.subscribe("orders", from: .lastN(10))
/// let resumed = try await client.subscribe("orders", from: .since(41, epoch: savedEpoch))
/// ```
public enum SubscriptionStart: Sendable, Hashable {
    /// Only messages published from now on.
    case latest
    /// The last `n` retained messages first (fewer when the topic's history holds fewer).
    case lastN(Int)
    /// Every message after `seq`, from the topic's history, when `epoch` is still the topic's.
    /// When the server cannot bring them all (history too short, a new epoch) the sequence
    /// starts with a ``PubSubGap``. A nil epoch takes the topic's current one.
    case since(Int, epoch: String?)
}
