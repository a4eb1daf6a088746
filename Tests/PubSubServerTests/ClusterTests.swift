import Foundation
import RedisTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A real `redis-server` and `pubsub` nodes (processes) on it: one cluster.
final class TestCluster: @unchecked Sendable {
    let redis: RedisServer
    private(set) var nodes: [ServerProcess] = []
    let arguments: [String]

    init(nodes count: Int, persistent: Bool = false, _ extra: [String] = []) async throws {
        redis = try await RedisServer(persistent: persistent)
        // 10 s for a command: sanitizer builds of three nodes and the test on two cores can
        // take longer than the default second to hear from a healthy Redis.
        arguments = ["--engine", "redis", "--redis-url", redis.url, "--redis-prefix", "cluster", "--redis-timeout-seconds", "10"] + extra
        for _ in 0..<count { nodes.append(try await ServerProcess(arguments)) }
        for node in nodes { try await Self.waitForReady(TestHTTP(port: node.port)) }
    }

    func http(_ index: Int) -> TestHTTP { TestHTTP(port: nodes[index].port) }
    func port(_ index: Int) -> Int { nodes[index].port }

    static func waitForReady(_ http: TestHTTP, seconds: Double = 20) async throws {
        try await eventually("node on port \(http.port) ready", seconds: seconds) { try await http.get("/api/ready").status == 200 }
    }

    func stop() {
        for node in nodes { node.stop() }
        redis.stop()
    }
}

/// Polls `condition` every 20 ms for at most `seconds`; throws if it never holds.
func eventually(_ what: String, seconds: Double = 10, _ condition: () async throws -> Bool) async throws {
    let deadline = Date().addingTimeInterval(seconds)
    while try await !condition() {
        guard Date() < deadline else { throw TestError("\(what): not within \(seconds) s") }
        try await Task.sleep(for: .milliseconds(20))
    }
}

/// SPEC 6 end to end: several `pubsub` processes on one real Redis behave as one server.
@Suite("Cluster on Redis")
struct ClusterTests {
    /// Events of `topic` a native client receives until it has `count`, as (seq, payload).
    static func events(_ ws: TestWebSocket, _ count: Int, timeout: Double = 10) async throws -> [(seq: Int, payload: Any)] {
        var events: [(Int, Any)] = []
        while events.count < count {
            let event = try await ws.next(type: "event", timeout: timeout)
            events.append((event["seq"] as? Int ?? -1, (event["message"] as? [String: Any])?["payload"] ?? NSNull()))
        }
        return events
    }

    /// A publish from each wire (native, Phoenix, REST) on one node reaches subscribers of
    /// both wires on the others, in seq order.
    @Test func crossNodeDeliveryFromEveryWire() async throws {
        let cluster = try await TestCluster(nodes: 3)
        defer { cluster.stop() }
        #expect(try await cluster.http(0).post("/api/topics", json: ["name": "orders"]).status == 201)
        let native = try await connect(cluster.port(1))
        try await subscribe(native, "orders")
        let phoenix = try await PhoenixClient.connect(cluster.port(2), vsn: 2)
        _ = try await phoenix.join()
        try await phoenix.send("1", "2", "pubsub", "subscribe", ["topic": "orders"])
        _ = try await phoenix.next(event: "phx_reply")

        let publisher = try await connect(cluster.port(0))
        try await publisher.send(json: ["type": "publish", "topic": "orders", "message": ["from": "native"], "request_id": "p1"])
        let ack = try await publisher.next(type: "ack")
        #expect(ack["seq"] as? Int == 1)
        #expect(ack["stats"] == nil, "delivery happens on every node after the reply")
        let phoenixPublisher = try await PhoenixClient.connect(cluster.port(0), vsn: 1)
        _ = try await phoenixPublisher.join()
        try await phoenixPublisher.send(nil, "2", "pubsub", "publish", ["topic": "orders", "message": ["from": "phoenix"]])
        _ = try await phoenixPublisher.next(event: "phx_reply")
        let rest = try await cluster.http(0).post("/api/topics/orders/messages", json: ["message": ["from": "rest"]])
        #expect(rest.status == 200)
        #expect(rest.json["seq"] as? Int == 3)
        #expect(rest.json["delivered"] == nil)

        let got = try await Self.events(native, 3)
        #expect(got.map(\.seq) == [1, 2, 3])
        #expect(got.map { ($0.payload as? [String: String])?["from"] } == ["native", "phoenix", "rest"])
        var phoenixSeqs: [Int] = []
        while phoenixSeqs.count < 3 {
            let push = try await phoenix.next(event: "message")
            phoenixSeqs.append(push.payload["seq"] as? Int ?? -1)
        }
        #expect(phoenixSeqs == [1, 2, 3])
        await native.close()
        await publisher.close()
    }

    /// Create on one node, see it on all, delete on another: subscribers everywhere are told.
    @Test func topicLifecycleAcrossNodes() async throws {
        let cluster = try await TestCluster(nodes: 2)
        defer { cluster.stop() }
        #expect(try await cluster.http(0).post("/api/topics", json: ["name": "life"]).status == 201)
        #expect(try await cluster.http(1).post("/api/topics", json: ["name": "life"]).status == 409)
        let listed = try await cluster.http(1).get("/api/topics").json["topics"] as? [[String: Any]] ?? []
        #expect(listed.map { $0["name"] as? String } == ["life"])
        let first = try await cluster.http(1).get("/api/topics/life").json["epoch"] as? String

        let subscriber = try await connect(cluster.port(0))
        try await subscribe(subscriber, "life")
        // Cluster-wide subscriber counts, seen from the other node within a few heartbeats.
        try await eventually("node 1 counts node 0's subscriber") {
            try await cluster.http(1).get("/api/topics/life").json["subscriber_count"] as? Int == 1
        }
        #expect(try await cluster.http(1).delete("/api/topics/life").status == 200)
        let notice = try await subscriber.next(type: "info")
        #expect(notice["msg"] as? String == "topic_deleted")
        #expect(try await cluster.http(0).get("/api/topics/life").status == 404)
        #expect(try await cluster.http(0).post("/api/topics/life/messages", json: ["message": 1]).status == 404)

        #expect(try await cluster.http(0).post("/api/topics", json: ["name": "life"]).status == 201)
        let again = try await cluster.http(1).get("/api/topics/life").json
        #expect(again["seq"] as? Int == 0)
        #expect(again["epoch"] as? String != first, "a new topic, a new epoch")
        await subscriber.close()
    }

    /// While one node publishes without pause, clients join on the others with a replay: each
    /// gets a run of seqs with no gap and no duplicate, and `last_n` and `since` + `epoch`
    /// replays give the same answer on every node.
    @Test func gaplessJoinAndEqualReplays() async throws {
        let cluster = try await TestCluster(nodes: 3, ["--history-size", "1000"])
        defer { cluster.stop() }
        _ = try await cluster.http(0).post("/api/topics", json: ["name": "flow"])
        let total = 600
        let publisher = try await connect(cluster.port(0))
        let publishing = Task {
            for index in 1...total {
                try await publisher.send(json: ["type": "publish", "topic": "flow", "message": index, "ack": false])
                if index % 50 == 0 { try await Task.sleep(for: .milliseconds(20)) }
            }
        }
        var joiners: [TestWebSocket] = []
        for round in 0..<6 {
            try await Task.sleep(for: .milliseconds(40))
            let joiner = try await connect(cluster.port(1 + round % 2))
            try await joiner.send(json: ["type": "subscribe", "topic": "flow", "last_n": 5, "request_id": "j"])
            joiners.append(joiner)
        }
        try await publishing.value
        for joiner in joiners {
            let ack = try await joiner.next(type: "ack")
            let position = ack["seq"] as? Int ?? -1
            let replayed = ack["replayed"] as? Int ?? -1
            let seqs = try await Self.events(joiner, total - position + replayed).map(\.seq)
            #expect(seqs == Array((position - replayed + 1)...total), "joined at \(position)")
        }
        // Replays from the same position on two nodes.
        let epoch = try await cluster.http(0).get("/api/topics/flow").json["epoch"] as? String ?? ""
        var answers: [[Int]] = []
        for node in [1, 2] {
            let client = try await connect(cluster.port(node))
            try await client.send(json: ["type": "subscribe", "topic": "flow", "since": total - 20, "epoch": epoch, "request_id": "r"])
            let ack = try await client.next(type: "ack")
            #expect(ack["recovered"] as? Bool == true)
            answers.append(try await Self.events(client, 20).map(\.seq))
            await client.close()
        }
        #expect(answers[0] == Array((total - 19)...total))
        #expect(answers[0] == answers[1])
        let lastN = try await [1, 2].asyncMap { node in
            (try await cluster.http(node).get("/api/topics/flow/messages?last_n=7").json["messages"] as? [[String: Any]] ?? []).map { $0["seq"] as? Int }
        }
        #expect(lastN[0] == lastN[1] && lastN[0].count == 7)
        for joiner in joiners { await joiner.close() }
        await publisher.close()
    }

    /// A node cut off from Redis (a proxy between them is cut) while another node publishes:
    /// back, it brings its subscriber up to date from the history, announcing what is no
    /// longer retained with `messages_dropped` and the topic.
    @Test func partitionedNodeCatchesUpItsSubscribers() async throws {
        let redis = try await RedisServer()
        let proxy = try await TCPProxy(to: redis.port)
        let shared = ["--engine", "redis", "--redis-prefix", "cluster", "--redis-timeout-seconds", "10", "--history-size", "5"]
        let cutOff = try await ServerProcess(shared + ["--redis-url", proxy.url])
        let other = try await ServerProcess(shared + ["--redis-url", redis.url])
        defer {
            cutOff.stop()
            other.stop()
            redis.stop()
        }
        let cutOffHTTP = TestHTTP(port: cutOff.port)
        let otherHTTP = TestHTTP(port: other.port)
        try await TestCluster.waitForReady(cutOffHTTP)
        try await TestCluster.waitForReady(otherHTTP)
        _ = try await otherHTTP.post("/api/topics", json: ["name": "t"])
        let subscriber = try await connect(cutOff.port)
        try await subscribe(subscriber, "t")
        for index in 1...3 { _ = try await otherHTTP.post("/api/topics/t/messages", json: ["message": index]) }
        #expect(try await Self.events(subscriber, 3).map(\.seq) == [1, 2, 3])

        proxy.cut()
        try await eventually("the cut-off node is not ready") { try await cutOffHTTP.get("/api/ready").status == 503 }
        for index in 4...23 { _ = try await otherHTTP.post("/api/topics/t/messages", json: ["message": index]) }
        proxy.restore()
        try await TestCluster.waitForReady(cutOffHTTP)

        let notice = try await subscriber.next(type: "info", timeout: 10)
        #expect(notice["msg"] as? String == "messages_dropped")
        #expect(notice["topic"] as? String == "t")
        #expect(notice["count"] as? Int == 15, "seqs 4 to 18 are no longer retained")
        #expect(try await Self.events(subscriber, 5).map(\.seq) == [19, 20, 21, 22, 23])
        await subscriber.close()
        await proxy.close()
    }

    /// A node killed with SIGKILL leaves every other node's cluster list.
    @Test func killedNodeLeavesTheCluster() async throws {
        let cluster = try await TestCluster(nodes: 3)
        defer { cluster.stop() }
        func members(_ node: Int) async throws -> [String] {
            let stats = try await cluster.http(node).get("/api/stats").json
            #expect((stats["node"] as? [String: Any])?["engine"] as? String == "redis")
            return ((stats["cluster"] as? [String: Any])?["nodes"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String }
        }
        try await eventually("three nodes listed") { try await members(0).count == 3 }
        cluster.nodes[2].signal(SIGKILL)
        try await eventually("the killed node left node 0's list", seconds: 15) { try await members(0).count == 2 }
        try await eventually("the killed node left node 1's list", seconds: 15) { try await members(1).count == 2 }
    }

    /// Redis stopped: publishes fail at once with UNAVAILABLE / 503, /api/ready says 503, and
    /// subscribers stay connected. Redis back: nodes reconnect by themselves, and the topic
    /// goes on where it was.
    @Test func redisOutage() async throws {
        let cluster = try await TestCluster(nodes: 2, persistent: true)
        defer { cluster.stop() }
        _ = try await cluster.http(0).post("/api/topics", json: ["name": "t"])
        let subscriber = try await connect(cluster.port(1))
        try await subscribe(subscriber, "t")
        let publisher = try await connect(cluster.port(0))
        _ = try await cluster.http(0).post("/api/topics/t/messages", json: ["message": 1])
        #expect(try await Self.events(subscriber, 1).map(\.seq) == [1])

        cluster.redis.stop()
        try await eventually("node 0 not ready") { try await cluster.http(0).get("/api/ready").status == 503 }
        let health = try await cluster.http(0).get("/api/health")
        #expect(health.status == 200, "alive, if not ready")
        #expect(health.json["engine_ready"] as? Bool == false)
        let refused = try await cluster.http(0).post("/api/topics/t/messages", json: ["message": 2])
        #expect(refused.status == 503)
        #expect(refused.json["code"] as? String == "UNAVAILABLE")
        try await publisher.send(json: ["type": "publish", "topic": "t", "message": 2, "request_id": "p"])
        let error = try await publisher.next(type: "error")
        #expect((error["error"] as? [String: Any])?["code"] as? String == "UNAVAILABLE")
        try await subscriber.send(json: ["type": "ping", "request_id": "still"])
        #expect(try await subscriber.next(type: "pong")["request_id"] as? String == "still")

        try await cluster.redis.restart()
        try await TestCluster.waitForReady(cluster.http(0))
        try await TestCluster.waitForReady(cluster.http(1))
        let published = try await cluster.http(0).post("/api/topics/t/messages", json: ["message": 3])
        #expect(published.json["seq"] as? Int == 2)
        #expect(try await Self.events(subscriber, 1).map(\.seq) == [2])
        await subscriber.close()
        await publisher.close()
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
