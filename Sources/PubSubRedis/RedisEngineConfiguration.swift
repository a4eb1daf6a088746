import RedisClient

/// Settings of the Redis engine.
public struct RedisEngineConfiguration: Sendable {
    public var url: RedisURL
    public var prefix: String
    /// Messages retained per topic for replay; 0 disables history.
    public var historySize: Int
    public var autoCreateTopics: Bool
    /// Topics in the cluster at once; 0 = no limit.
    public var maxTopics: Int
    /// How long a command may wait for Redis before it fails with UNAVAILABLE.
    public var commandTimeoutSeconds: Double = 1
    /// Between two heartbeats of this node (its figures, the cluster's list).
    public var heartbeatSeconds: Double = 1
    /// A node whose heartbeat is older than this has left the cluster.
    public var nodeExpirySeconds: Double = 5

    public init(url: RedisURL, prefix: String = "pubsub", historySize: Int = 100, autoCreateTopics: Bool = false, maxTopics: Int = 0) {
        self.url = url
        self.prefix = prefix
        self.historySize = historySize
        self.autoCreateTopics = autoCreateTopics
        self.maxTopics = maxTopics
    }
}
