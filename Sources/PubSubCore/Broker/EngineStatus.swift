/// What an engine says about itself, for `/api/ready`, `/api/health` and `/api/stats`.
public struct EngineStatus: Sendable {
    /// "memory" or "redis".
    public let engine: String
    /// Connected to what it needs: publishes and subscribes can succeed.
    public let ready: Bool
    /// This node's id in the cluster.
    public let nodeID: String
    /// The nodes sharing the engine, this one included, as last seen; nil for an engine of
    /// one node.
    public let cluster: [ClusterNode]?
    /// Subscribers per topic on the other nodes of the cluster, as last seen (this node's own
    /// are the hub's); nil for an engine of one node.
    public let otherNodesSubscriberCounts: [String: Int]?

    public init(engine: String, ready: Bool, nodeID: String, cluster: [ClusterNode]?, otherNodesSubscriberCounts: [String: Int]?) {
        self.engine = engine
        self.ready = ready
        self.nodeID = nodeID
        self.cluster = cluster
        self.otherNodesSubscriberCounts = otherNodesSubscriberCounts
    }
}

/// One node of a cluster, as its last heartbeat told.
public struct ClusterNode: Sendable, Equatable {
    public let id: String
    public let connections: Int
    public let subscriptions: Int
    public let lastSeenMillis: Int64

    public init(id: String, connections: Int, subscriptions: Int, lastSeenMillis: Int64) {
        self.id = id
        self.connections = connections
        self.subscriptions = subscriptions
        self.lastSeenMillis = lastSeenMillis
    }
}

/// This node's figures, as the engine reports them to the cluster.
public struct NodeLoad: Sendable {
    public var connections: Int
    /// Subscribers per topic on this node.
    public var subscriberCounts: [String: Int]

    public init(connections: Int, subscriberCounts: [String: Int]) {
        self.connections = connections
        self.subscriberCounts = subscriberCounts
    }
}
