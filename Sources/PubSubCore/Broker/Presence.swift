/// One subscription of a topic as its presence list shows it (SPEC 9): one entry per
/// connection and topic, so a user with two connections appears twice, with two client ids
/// (Phoenix Presence groups such metas under the user's key; here the client decides).
public struct PresenceEntry: Sendable, Hashable {
    /// The subscribing connection's id (unique in the cluster: it carries its node's prefix).
    public let clientID: String
    /// The token's `sub` with `--auth token`; nil otherwise.
    public let user: String?
    /// When the subscription was made, in milliseconds since 1970.
    public let joinedAtMillis: Int64

    public init(clientID: String, user: String?, joinedAtMillis: Int64) {
        self.clientID = clientID
        self.user = user
        self.joinedAtMillis = joinedAtMillis
    }
}

/// A change of a topic's presence list, as a `presence` frame carries it: the entries that
/// joined and those that left. Applying `joins` and `leaves` by `clientID` is idempotent, so
/// a diff that repeats what a client already holds changes nothing.
public struct PresenceDiff: Sendable, Equatable {
    public let topic: String
    public let joins: [PresenceEntry]
    public let leaves: [PresenceEntry]

    public init(topic: String, joins: [PresenceEntry] = [], leaves: [PresenceEntry] = []) {
        self.topic = topic
        self.joins = joins
        self.leaves = leaves
    }
}

extension TopicSink {
    /// A sink that shows no presence ignores the diffs.
    public func presenceChanged(_ diff: PresenceDiff) {}
}

extension Array where Element == PresenceEntry {
    /// The order of a presence list: oldest subscription first, then by client id.
    public func presenceOrdered() -> [PresenceEntry] {
        sorted { ($0.joinedAtMillis, $0.clientID) < ($1.joinedAtMillis, $1.clientID) }
    }
}
