import BrokerContract
import Foundation
import NIOCore
import PubSubCore
import PubSubRedis
import RedisTestSupport
import Testing

/// What the Redis engine adds to the contract: many nodes on one Redis, and losing Redis.
@Suite("Redis engine")
struct RedisEngineTests {
    static func publish(_ broker: any Broker, _ topic: String, _ count: Int, from start: Int = 0) async throws -> [PublishReceipt] {
        var receipts: [PublishReceipt] = []
        for index in start..<(start + count) {
            receipts.append(try await broker.publish(topic: topic, message: MessageInput(id: nil, payload: ByteBuffer(string: "\(index)"))))
        }
        return receipts
    }

    /// Three nodes publish to one topic at once; a fourth hands its sink every message once,
    /// in seq order, and every node agrees on the history.
    @Test func nodesShareSeqsAndOrder() async throws {
        let server = try await RedisServer()
        let prefix = "order"
        let nodes = [
            try await makeRedisEngine(server.url, prefix: prefix), try await makeRedisEngine(server.url, prefix: prefix),
            try await makeRedisEngine(server.url, prefix: prefix),
        ]
        let reader = try await makeRedisEngine(server.url, prefix: prefix, configuration: BrokerConfiguration(historySize: 1_000))
        _ = try await nodes[0].createTopic("t").get()
        let sink = RecordingSink()
        _ = try await reader.subscribe(topic: "t", sink: sink).get()
        let seqs = try await withThrowingTaskGroup(of: [UInt64].self) { group in
            for node in nodes {
                group.addTask { try await Self.publish(node, "t", 100).map(\.seq) }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(Set(seqs).count == 300, "no two messages share a seq")
        try await waitUntil("the reader has all 300") { sink.seqs.count >= 300 }
        #expect(sink.seqs == Array(1...300))
        let histories = try await [reader, nodes[1]].asyncMap { try await $0.history(topic: "t", .last(5)).get() }
        #expect(histories.map { $0.publications.map(\.seq) } == [[296, 297, 298, 299, 300], [296, 297, 298, 299, 300]])
        #expect(histories.map(\.epoch) == [histories[0].epoch, histories[0].epoch])
        for node in nodes + [reader] { await node.shutdown() }
    }

    /// A node cut off from Redis: it is not ready, it fails publishes and subscribes with
    /// UNAVAILABLE; back, it catches its sink up from the history and says how many are no
    /// longer retained.
    @Test func partitionedNodeCatchesUp() async throws {
        let server = try await RedisServer()
        let proxy = try await TCPProxy(to: server.port)
        let prefix = "catch"
        let cutOff = try await makeRedisEngine(proxy.url, prefix: prefix, configuration: BrokerConfiguration(historySize: 5))
        let other = try await makeRedisEngine(server.url, prefix: prefix, configuration: BrokerConfiguration(historySize: 5))
        _ = try await other.createTopic("t").get()
        let sink = RecordingSink()
        _ = try await cutOff.subscribe(topic: "t", sink: sink).get()
        _ = try await Self.publish(other, "t", 3)
        try await waitUntil("the first three arrive") { sink.seqs == [1, 2, 3] }

        proxy.cut()
        try await waitUntil("the cut-off node says it is not ready") { !cutOff.status().ready }
        await BrokerContract.expectError(.unavailable) { _ = try await Self.publish(cutOff, "t", 1) }
        await BrokerContract.expectError(.unavailable) { _ = try await cutOff.subscribe(topic: "u", sink: RecordingSink()).get() }
        _ = try await Self.publish(other, "t", 20)  // seqs 4...23; 19...23 retained

        proxy.restore()
        try await waitUntil("the cut-off node is back") { cutOff.status().ready }
        try await waitUntil("it caught up") { sink.seqs.last == 23 }
        #expect(sink.events == ["1", "2", "3", "missed 15", "19", "20", "21", "22", "23"])
        // And it is live again.
        _ = try await Self.publish(cutOff, "t", 1)
        try await waitUntil("live again") { sink.seqs.last == 24 }
        #expect(sink.seqs.count == 9)
        await cutOff.shutdown()
        await other.shutdown()
        await proxy.close()
    }

    /// A topic deleted while a node was cut off, or deleted and made again: the node's sink
    /// is told it was deleted when the node is back.
    @Test func deletionWhilePartitioned() async throws {
        let server = try await RedisServer()
        let proxy = try await TCPProxy(to: server.port)
        let cutOff = try await makeRedisEngine(proxy.url, prefix: "del")
        let other = try await makeRedisEngine(server.url, prefix: "del")
        _ = try await other.createTopic("gone").get()
        _ = try await other.createTopic("again").get()
        let gone = RecordingSink()
        let again = RecordingSink()
        _ = try await cutOff.subscribe(topic: "gone", sink: gone).get()
        _ = try await cutOff.subscribe(topic: "again", sink: again).get()
        _ = try await Self.publish(other, "again", 2)
        try await waitUntil("two arrive") { again.seqs == [1, 2] }

        proxy.cut()
        try await waitUntil("cut off") { !cutOff.status().ready }
        _ = try await other.deleteTopic("gone").get()
        _ = try await other.deleteTopic("again").get()
        _ = try await other.createTopic("again").get()
        _ = try await Self.publish(other, "again", 5)

        proxy.restore()
        try await waitUntil("both told") { gone.deleted && again.deleted }
        #expect(gone.events == ["deleted"])
        #expect(again.events == ["1", "2", "deleted"], "the new topic's seqs never reach the old subscription")
        await cutOff.shutdown()
        await other.shutdown()
        await proxy.close()
    }

    /// Redis stopped: every operation fails with UNAVAILABLE, none hangs. Redis back (with its
    /// data): the node reconnects by itself and serves again.
    @Test func redisStopAndRestart() async throws {
        let server = try await RedisServer(persistent: true)
        let node = try await makeRedisEngine(server.url, prefix: "restart")
        _ = try await node.createTopic("t").get()
        let sink = RecordingSink()
        _ = try await node.subscribe(topic: "t", sink: sink).get()
        _ = try await Self.publish(node, "t", 2)
        try await waitUntil("two arrive") { sink.seqs == [1, 2] }

        server.stop()
        try await waitUntil("not ready") { !node.status().ready }
        await BrokerContract.expectError(.unavailable) { _ = try await Self.publish(node, "t", 1) }
        await BrokerContract.expectError(.unavailable) { _ = try await node.topics().get() }
        await BrokerContract.expectError(.unavailable) { _ = try await node.history(topic: "t", .last(nil)).get() }
        await BrokerContract.expectError(.unavailable) { _ = try await node.createTopic("u").get() }

        try await server.restart()
        try await waitUntil("ready again") { node.status().ready }
        #expect(try await node.history(topic: "t", .last(nil)).get().publications.map(\.seq) == [1, 2])
        _ = try await Self.publish(node, "t", 1)
        try await waitUntil("live again") { sink.seqs == [1, 2, 3] }
        await node.shutdown()
    }

    /// Redis that hangs (SIGSTOP): a publish fails with UNAVAILABLE after the command timeout
    /// instead of waiting for it.
    @Test func hungRedisFailsPublishes() async throws {
        let server = try await RedisServer()
        let setup = try await makeRedisEngine(server.url, prefix: "hung")
        _ = try await setup.createTopic("t").get()
        await setup.shutdown()
        let node = try await makeRedisEngine(server.url, prefix: "hung", commandTimeout: 1)
        server.pause()
        defer { server.resume() }
        await BrokerContract.expectError(.unavailable) { _ = try await Self.publish(node, "t", 1) }
        server.resume()
        try await waitUntil("serves again") { (try? await Self.publish(node, "t", 1)) != nil }
        await node.shutdown()
    }

    /// Every node lists the cluster's nodes with their figures, and adds the others'
    /// subscriber counts; a node that stops is gone from the list, and one that dies (its
    /// heartbeats stop) is gone after the expiry.
    @Test func clusterMembership() async throws {
        let server = try await RedisServer()
        let proxy = try await TCPProxy(to: server.port)
        let settings = BrokerConfiguration()
        let a = try await makeRedisEngine(server.url, prefix: "members", configuration: settings)
        let b = try await makeRedisEngine(server.url, prefix: "members", configuration: settings)
        let dying = try await makeRedisEngine(proxy.url, prefix: "members", configuration: settings)
        b.start { NodeLoad(connections: 7, subscriberCounts: ["t": 3, "u": 1]) }
        try await waitUntil("a sees three nodes") { a.status().cluster?.count == 3 }
        try await waitUntil("a sees b's figures") {
            a.status().cluster?.first { $0.id == b.status().nodeID }?.connections == 7
        }
        try await waitUntil("a counts b's subscribers") { a.status().otherNodesSubscriberCounts?["t"] == 3 }
        #expect(a.status().otherNodesSubscriberCounts?["u"] == 1)

        proxy.cut()  // dies: no goodbye
        try await waitUntil("the dead node leaves a's list") { a.status().cluster?.count == 2 }
        await b.shutdown()
        try await waitUntil("the stopped node leaves a's list") { a.status().cluster?.map(\.id) == [a.status().nodeID] }
        #expect(a.status().otherNodesSubscriberCounts?["t"] == nil)
        await a.shutdown()
        await dying.shutdown()
        await proxy.close()
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
