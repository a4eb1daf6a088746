import PubSubCore

/// What one credential allows (SPEC 7): a client token's claims, or everything for an API key.
/// A connection keeps its grant and remembers, per topic, what it was allowed: nothing is
/// checked per delivery.
public struct Grant: Sendable {
    /// The token's `sub`, for logs; nil for an API key.
    public let user: String?
    public let subscribe: [TopicPattern]
    public let publish: [TopicPattern]
    /// Create and delete topics, list them, read stats.
    public let admin: Bool
    /// When the token expires (milliseconds since 1970); nil for an API key.
    public let expiresAtMillis: Int64?

    public init(user: String?, subscribe: [TopicPattern], publish: [TopicPattern], admin: Bool, expiresAtMillis: Int64?) {
        self.user = user
        self.subscribe = subscribe
        self.publish = publish
        self.admin = admin
        self.expiresAtMillis = expiresAtMillis
    }

    /// An API key's: every right, no expiry.
    public static let everything = Grant(user: nil, subscribe: [], publish: [], admin: true, expiresAtMillis: nil)

    /// A topic, or a pattern (SPEC 9) when some grant covers every topic it can match: as
    /// NATS checks a wildcard subscription against its permissions, `orders.*` is allowed by
    /// `orders.*` or `orders.>` or `>`, not by `orders.eu`.
    public func maySubscribe(_ topic: String) -> Bool {
        if admin { return true }
        guard TopicPattern.isPattern(topic) else { return subscribe.contains { $0.matches(topic) } }
        guard let pattern = TopicPattern(topic) else { return false }
        return subscribe.contains { $0.covers(pattern) }
    }
    public func mayPublish(_ topic: String) -> Bool { admin || publish.contains { $0.matches(topic) } }
}
