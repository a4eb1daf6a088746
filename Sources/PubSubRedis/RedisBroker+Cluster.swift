import NIOConcurrencyHelpers
import NIOCore
import PubSubCore
import RedisClient

/// The cluster as this node last saw it, refreshed by its heartbeat.
final class ClusterView: Sendable {
    private struct State {
        var nodes: [ClusterNode] = []
        var otherNodesSubscriberCounts: [String: Int] = [:]
        /// The last heartbeat got its answers: Redis is there and answering.
        var healthy = false
        var heartbeat: RepeatedTask?
    }
    private let state = NIOLockedValueBox(State())

    var nodes: [ClusterNode] { state.withLockedValue { $0.nodes } }
    var otherNodesSubscriberCounts: [String: Int] { state.withLockedValue { $0.otherNodesSubscriberCounts } }
    var healthy: Bool {
        get { state.withLockedValue { $0.healthy } }
        set { state.withLockedValue { $0.healthy = newValue } }
    }

    func update(nodes: [ClusterNode], otherNodesSubscriberCounts: [String: Int]) {
        state.withLockedValue {
            $0.nodes = nodes
            $0.otherNodesSubscriberCounts = otherNodesSubscriberCounts
            $0.healthy = true
        }
    }

    /// The heartbeat; one started before is stopped.
    func keep(_ task: RepeatedTask) {
        let previous = state.withLockedValue { state in
            defer { state.heartbeat = task }
            return state.heartbeat
        }
        previous?.cancel()
    }
    func takeHeartbeat() -> RepeatedTask? {
        state.withLockedValue { state in
            defer { state.heartbeat = nil }
            return state.heartbeat
        }
    }
}

/// Each node writes its figures (connections, subscribers per topic) every heartbeat and
/// reads everybody's: the cluster's list in `/api/stats` and cluster-wide subscriber counts
/// come from there. A node whose last heartbeat is older than the expiry has left (it died);
/// whoever sees that first removes it.
extension RedisBroker {
    func startHeartbeat(load: @escaping @Sendable () -> NodeLoad) {
        let interval = TimeAmount.nanoseconds(Int64(configuration.heartbeatSeconds * 1e9))
        let loop = self.loop
        let task = loop.scheduleRepeatedAsyncTask(initialDelay: .zero, delay: interval) { [weak self] _ in
            guard let self else { return loop.makeSucceededVoidFuture() }
            return self.beat(load()).flatMapError { _ in
                self.cluster.healthy = false
                return self.loop.makeSucceededVoidFuture()
            }
        }
        cluster.keep(task)
    }

    private func beat(_ load: NodeLoad) -> EventLoopFuture<Void> {
        guard let connection = commands.current else {
            cluster.healthy = false
            return loop.makeSucceededVoidFuture()
        }
        let now = WallClock.nowMillis()
        let subscriptions = load.subscriberCounts.values.reduce(0, +)
        let mine = keys.nodeSubscriptions(nodeID)
        let expiry = configuration.nodeExpirySeconds
        // This node's figures, replaced in one script: a reader never sees half of them.
        var arguments: [RESPArgument] = [
            .string(nodeID), .string("\(load.connections) \(subscriptions) \(now)"), .integer(Int64((expiry * 3).rounded(.up))),
        ]
        for (topic, count) in load.subscriberCounts {
            arguments.append(.string(topic))
            arguments.append(.integer(Int64(count)))
        }
        let written = connection.run(RedisScripts.heartbeat, keys: [.string(keys.nodes), .string(mine)], arguments: arguments)
        let nodes = connection.command(["HGETALL", .string(keys.nodes)])
        return bounded(written.and(nodes)).flatMap { _, value in
            var live: [ClusterNode] = []
            var dead: [String] = []
            if case .array(let fields?) = value {
                for pair in stride(from: 0, to: fields.count - 1, by: 2) {
                    guard let id = fields[pair].string, let figures = fields[pair + 1].string else { continue }
                    let numbers = figures.split(separator: " ").compactMap { Int64($0) }
                    guard numbers.count == 3 else { continue }
                    if numbers[2] < now - Int64(expiry * 1000) {
                        dead.append(id)
                    } else {
                        live.append(ClusterNode(id: id, connections: Int(numbers[0]), subscriptions: Int(numbers[1]), lastSeenMillis: numbers[2]))
                    }
                }
            }
            if !dead.isEmpty {
                _ = connection.send(["HDEL", .string(self.keys.nodes)] + dead.map { .string($0) })
                _ = connection.send(["DEL"] + dead.map { .string(self.keys.nodeSubscriptions($0)) })
            }
            let members = live.sorted { $0.id < $1.id }
            let others = members.filter { $0.id != self.nodeID }
            let reads = others.map { connection.command(["HGETALL", .string(self.keys.nodeSubscriptions($0.id))]) }
            return self.bounded(EventLoopFuture.whenAllSucceed(reads, on: self.loop)).map { answers in
                var counts: [String: Int] = [:]
                for answer in answers {
                    guard case .array(let fields?) = answer else { continue }
                    for pair in stride(from: 0, to: fields.count - 1, by: 2) {
                        guard let topic = fields[pair].string, let count = fields[pair + 1].int else { continue }
                        counts[topic, default: 0] += Int(count)
                    }
                }
                self.cluster.update(nodes: members, otherNodesSubscriberCounts: counts)
            }
        }
    }

    /// Stops the heartbeat and takes this node out of the cluster's list.
    func leaveCluster() async {
        cluster.takeHeartbeat()?.cancel()
        guard let connection = commands.current else { return }
        let removed = [
            connection.command(["HDEL", .string(keys.nodes), .string(nodeID)]),
            connection.command(["DEL", .string(keys.nodeSubscriptions(nodeID))]),
        ]
        try? await bounded(EventLoopFuture.andAllSucceed(removed, on: loop)).get()
    }
}
