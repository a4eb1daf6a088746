/// Where a cluster keeps its state in Redis; every key and channel starts with the prefix
/// (`--redis-prefix`), so several clusters can share one Redis (docs/scaling.md).
///
///     {prefix}:topics               hash   topic name -> created_at (ms)
///     {prefix}:topic:{name}         hash   seq, epoch, created
///     {prefix}:history:{name}       list   records, newest first, trimmed to the history size
///     {prefix}:events:{name}        channel  batches of records, and the deletion marker
///     {prefix}:published            string messages published by the cluster
///     {prefix}:nodes                hash   node id -> "connections subscriptions last_seen_ms"
///     {prefix}:node:{id}:subs       hash   topic name -> this node's subscribers (expires)
///     {prefix}:presence:{name}      hash   client id -> presence entry (RedisBroker+Presence)
///     {prefix}:presence-expiry:{name} sorted set  client id by expiry time (ms)
struct RedisKeys: Sendable {
    let prefix: String

    var topics: String { "\(prefix):topics" }
    var published: String { "\(prefix):published" }
    var nodes: String { "\(prefix):nodes" }
    var topicPrefix: String { "\(prefix):topic:" }
    var eventsPrefix: String { "\(prefix):events:" }

    func topic(_ name: String) -> String { "\(prefix):topic:\(name)" }
    func history(_ name: String) -> String { "\(prefix):history:\(name)" }
    func events(_ name: String) -> String { "\(prefix):events:\(name)" }
    func nodeSubscriptions(_ node: String) -> String { "\(prefix):node:\(node):subs" }

    /// The topic whose channel this is, or nil for another channel.
    func topicName(ofChannel channel: String) -> String? {
        channel.hasPrefix(eventsPrefix) ? String(channel.dropFirst(eventsPrefix.count)) : nil
    }
}
