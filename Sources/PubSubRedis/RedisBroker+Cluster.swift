import NIOConcurrencyHelpers
import NIOCore
import PubSubCore
import RedisClient

/// The cluster as this node last saw it, refreshed by its heartbeat.
final class ClusterView: Sendable {
    private struct State {
        var nodes: [ClusterNode] = []
        var writer = CountsWriter()
        var reader = CountsReader()
        /// The last heartbeat got its answers: Redis is there and answering.
        var healthy = false
        var heartbeat: RepeatedTask?
    }
    private let state = NIOLockedValueBox(State())

    var nodes: [ClusterNode] { state.withLockedValue { $0.nodes } }
    var otherNodesSubscriberCounts: [String: Int] { state.withLockedValue { $0.reader.totals } }
    var healthy: Bool {
        get { state.withLockedValue { $0.healthy } }
        set { state.withLockedValue { $0.healthy = newValue } }
    }

    func update(nodes: [ClusterNode], fresh: [String: (version: Int64?, counts: [String: Int])], others: Set<String>) {
        state.withLockedValue {
            $0.nodes = nodes
            $0.reader.update(live: others, fresh: fresh)
            $0.healthy = true
        }
    }

    /// Which of the other nodes' counts to read again.
    func needsReading(_ node: String, version: Int64?) -> Bool {
        state.withLockedValue { $0.reader.needsReading(node, version: version) }
    }

    func nextWrite(_ counts: [String: Int]) -> CountsWriter.Write { state.withLockedValue { $0.writer.next(counts) } }
    func wrote(_ write: CountsWriter.Write) { state.withLockedValue { $0.writer.wrote(write) } }
    func forgetWritten() { state.withLockedValue { $0.writer.forget() } }

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
/// come from there. Subscriber counts travel only when they change: a node sends the topics
/// whose count changed, and the others read its counts again only when their version did.
/// A node whose last heartbeat is older than the expiry has left (it died); whoever sees that
/// first removes it.
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
        let written = writeFigures(load, now: now, on: connection)
        let nodes = connection.command(["HGETALL", .string(keys.nodes)])
        return bounded(written.and(nodes)).flatMap { _, value in
            self.readCluster(value, now: now, on: connection)
        }
    }

    /// This node's line in the nodes hash, and its subscriber counts: all of them after a
    /// failure or when Redis no longer had them, else only what changed.
    private func writeFigures(_ load: NodeLoad, now: Int64, on connection: RedisConnection) -> EventLoopFuture<Void> {
        let subscriptions = load.subscriberCounts.values.reduce(0, +)
        let keys: [RESPArgument] = [.string(self.keys.nodes), .string(self.keys.nodeSubscriptions(nodeID))]
        let expiry = Int64((configuration.nodeExpirySeconds * 3).rounded(.up))
        @Sendable func send(_ write: CountsWriter.Write) -> EventLoopFuture<RESPValue> {
            var arguments: [RESPArgument] = [
                .string(nodeID), .string("\(load.connections) \(subscriptions) \(now) \(write.version)"), .integer(expiry),
                .string(write.full ? "full" : "changes"),
            ]
            arguments.reserveCapacity(arguments.count + write.pairs.count * 2)
            for (topic, count) in write.pairs {
                arguments.append(.string(topic))
                arguments.append(.integer(Int64(count)))
            }
            return connection.run(RedisScripts.heartbeat, keys: keys, arguments: arguments)
        }
        let write = cluster.nextWrite(load.subscriberCounts)
        return send(write).flatMap { value in
            guard (try? Self.array(value))?.first?.int == 2 else {
                self.cluster.wrote(write)
                return self.loop.makeSucceededVoidFuture()
            }
            self.cluster.forgetWritten()
            let full = self.cluster.nextWrite(load.subscriberCounts)
            return send(full).map { _ in self.cluster.wrote(full) }
        }.flatMapErrorThrowing { error in
            self.cluster.forgetWritten()
            throw error
        }
    }

    /// The nodes hash as read this heartbeat: the live nodes, the dead ones removed, and the
    /// counts of each node whose version changed read again.
    private func readCluster(_ value: RESPValue, now: Int64, on connection: RedisConnection) -> EventLoopFuture<Void> {
        let expiry = configuration.nodeExpirySeconds
        var live: [ClusterNode] = []
        var versions: [String: Int64] = [:]
        var dead: [String] = []
        if case .array(let fields?) = value {
            for pair in stride(from: 0, to: fields.count - 1, by: 2) {
                guard let id = fields[pair].string, let figures = fields[pair + 1].string else { continue }
                // `connections subscriptions last_seen`, then the counts' version (none from
                // a node of an older build).
                let numbers = figures.split(separator: " ").compactMap { Int64($0) }
                guard numbers.count >= 3 else { continue }
                if numbers[2] < now - Int64(expiry * 1000) {
                    dead.append(id)
                } else {
                    live.append(ClusterNode(id: id, connections: Int(numbers[0]), subscriptions: Int(numbers[1]), lastSeenMillis: numbers[2]))
                    if numbers.count >= 4 { versions[id] = numbers[3] }
                }
            }
        }
        if !dead.isEmpty {
            _ = connection.send(["HDEL", .string(keys.nodes)] + dead.map { .string($0) })
            _ = connection.send(["DEL"] + dead.map { .string(self.keys.nodeSubscriptions($0)) })
        }
        let members = live.sorted { $0.id < $1.id }
        let others = members.map(\.id).filter { $0 != nodeID }
        let read = versions
        let stale = others.filter { cluster.needsReading($0, version: read[$0]) }
        let reads = stale.map { connection.command(["HGETALL", .string(self.keys.nodeSubscriptions($0))]) }
        return bounded(EventLoopFuture.whenAllSucceed(reads, on: loop)).map { answers in
            var fresh: [String: (version: Int64?, counts: [String: Int])] = [:]
            for (node, answer) in zip(stale, answers) {
                var counts: [String: Int] = [:]
                if case .array(let fields?) = answer {
                    for pair in stride(from: 0, to: fields.count - 1, by: 2) {
                        guard let topic = fields[pair].string, let count = fields[pair + 1].int else { continue }
                        counts[topic] = Int(count)
                    }
                }
                fresh[node] = (read[node], counts)
            }
            self.cluster.update(nodes: members, fresh: fresh, others: Set(others))
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
