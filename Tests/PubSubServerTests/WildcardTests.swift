import Foundation
import PubSubServer
import Testing

/// SPEC 9 wildcards over real sockets: a pattern subscription gets the events of every topic
/// it matches, existing or made later, each with its concrete topic and seq.
@Suite("Wildcard subscriptions")
struct WildcardTests {
    static func code(_ frame: [String: Any]) -> String? { (frame["error"] as? [String: Any])?["code"] as? String }

    @Test(arguments: [false, true])
    func patternsCatchExistingAndLaterTopics(deferred: Bool) async throws {
        try await TestEngine.$deferred.withValue(deferred) {
            try await withServer({ $0.autoCreateTopics = true }) { port, http in
                #expect(try await http.post("/api/topics", json: ["name": "orders.eu"]).status == 201)
                let subscriber = try await connect(port)
                let ack = try await subscribe(subscriber, "orders.*")
                #expect(ack["action"] as? String == "subscribed" && ack["topic"] as? String == "orders.*")
                #expect(ack["pattern"] as? Bool == true && ack["subscriber_count"] as? Int == 1 && ack["seq"] == nil)

                let publisher = try await connect(port)
                for (index, topic) in ["orders.eu", "other", "orders.us", "orders.us.paris", "orders.us"].enumerated() {
                    try await publisher.send(json: ["type": "publish", "topic": topic, "message": ["n": index], "request_id": "p\(index)"])
                    _ = try await publisher.next(type: "ack")
                }
                var events: [String] = []
                for _ in 0..<3 {
                    let event = try await subscriber.next(type: "event")
                    let n = ((event["message"] as? [String: Any])?["payload"] as? [String: Any])?["n"] as? Int ?? -1
                    events.append("\(event["topic"] as? String ?? "?"):\(event["seq"] as? Int ?? -1):\(n)")
                }
                #expect(events == ["orders.eu:1:0", "orders.us:1:2", "orders.us:2:4"])

                // Publishing to a pattern, and a replay with one, are bad requests.
                try await publisher.send(json: ["type": "publish", "topic": "orders.*", "message": 1, "request_id": "bad"])
                #expect(Self.code(try await publisher.next(type: "error")) == "BAD_REQUEST")
                try await subscriber.send(json: ["type": "subscribe", "topic": "orders.>", "last_n": 5, "request_id": "r"])
                #expect(Self.code(try await subscriber.next(type: "error")) == "BAD_REQUEST")
                try await subscriber.send(json: ["type": "subscribe", "topic": "orders.>", "since": 1, "request_id": "s"])
                #expect(Self.code(try await subscriber.next(type: "error")) == "BAD_REQUEST")
                try await subscriber.send(json: ["type": "subscribe", "topic": "orders.>.x", "request_id": "x"])
                #expect(Self.code(try await subscriber.next(type: "error")) == "BAD_REQUEST")
                #expect(try await http.post("/api/topics/orders.*/messages", json: ["message": 1]).status == 400)

                // Unsubscribed by the same text: nothing more comes.
                try await subscriber.send(json: ["type": "unsubscribe", "topic": "orders.*", "request_id": "u"])
                let left = try await subscriber.next(type: "ack")
                #expect(left["action"] as? String == "unsubscribed" && left["subscriber_count"] as? Int == 0)
                try await publisher.send(json: ["type": "publish", "topic": "orders.eu", "message": ["n": 9], "request_id": "after"])
                _ = try await publisher.next(type: "ack")
                try await subscriber.send(json: ["type": "ping", "request_id": "last"])
                #expect(try await subscriber.next()["type"] as? String == "pong", "no event after the unsubscribe")
            }
        }
    }

    /// Subscribed by name and through a pattern: each event once.
    @Test func overlappingSubscriptionsDeliverOnce() async throws {
        try await withServer { port, http in
            #expect(try await http.post("/api/topics", json: ["name": "orders.eu"]).status == 201)
            let ws = try await connect(port)
            try await subscribe(ws, "orders.eu")
            try await subscribe(ws, "orders.*")
            try await subscribe(ws, ">")
            #expect(try await http.post("/api/topics/orders.eu/messages", json: ["message": 1]).status == 200)
            #expect(try await http.post("/api/topics/orders.eu/messages", json: ["message": 2]).status == 200)
            #expect(try await ws.next(type: "event")["seq"] as? Int == 1)
            #expect(try await ws.next(type: "event")["seq"] as? Int == 2)
            try await ws.send(json: ["type": "ping", "request_id": "p"])
            #expect(try await ws.next()["type"] as? String == "pong", "each event once")
        }
    }

    /// Phoenix: the channel topic is never a pattern; a subscribe event in the channel may be.
    @Test func phoenixChannelSubscribesAPattern() async throws {
        try await withServer { port, http in
            #expect(try await http.post("/api/topics", json: ["name": "orders.eu"]).status == 201)
            let client = try await PhoenixClient.connect(port, vsn: 2)
            try await client.send("1", "1", "orders.*", "phx_join", [:])
            let refused = try await client.next(event: "phx_reply")
            #expect(refused.payload["status"] as? String == "error")
            _ = try await client.join(ref: "2")
            try await client.send("2", "3", "pubsub", "subscribe", ["topic": "orders.*"])
            let ack = try await client.next(event: "phx_reply").payload["response"] as? [String: Any] ?? [:]
            #expect(ack["action"] as? String == "subscribed" && ack["pattern"] as? Bool == true)
            #expect(try await http.post("/api/topics/orders.eu/messages", json: ["message": 5]).status == 200)
            let push = try await client.next(event: "message")
            #expect(push.payload["topic"] as? String == "orders.eu" && push.payload["seq"] as? Int == 1)
            await client.ws.close()
        }
    }

    /// With tokens, a pattern needs a grant covering every topic it can match.
    @Test func patternsNeedACoveringGrant() async throws {
        try await AuthTests.withAuthServer { port, _ in
            let token = try await AuthTests.token(subscribe: ["orders.>", "news.eu"])
            let ws = try await connect(port, path: "/ws?token=\(token)")
            for (pattern, allowed) in [("orders.*", true), ("orders.>", true), ("orders.*.paris", true), (">", false), ("news.*", false), ("*.eu", false)] {
                try await ws.send(json: ["type": "subscribe", "topic": pattern, "request_id": pattern])
                let reply = try await ws.next()
                if allowed {
                    #expect(reply["type"] as? String == "ack" && reply["pattern"] as? Bool == true, "\(pattern): \(reply)")
                } else {
                    #expect(Self.code(reply) == "FORBIDDEN", "\(pattern): \(reply)")
                }
            }
        }
    }
}

/// SPEC 9 with the Redis engine: a pattern subscriber on one node gets what another node
/// publishes, to a topic created after the subscribe (on that other node).
@Suite("Wildcard subscriptions in a cluster")
struct ClusterWildcardTests {
    @Test func laterTopicsFromAnotherNode() async throws {
        let cluster = try await TestCluster(nodes: 2, ["--auto-create-topics", "true"])
        defer { cluster.stop() }
        _ = try await cluster.http(0).post("/api/topics", json: ["name": "orders.old"])
        #expect(try await cluster.http(0).post("/api/topics/orders.old/messages", json: ["message": 0]).status == 200)
        let subscriber = try await connect(cluster.port(1))
        let ack = try await subscribe(subscriber, "orders.*")
        #expect(ack["pattern"] as? Bool == true)

        let publisher = try await connect(cluster.port(0))
        let sends = [("orders.old", 1), ("elsewhere", 2), ("orders.new", 3), ("orders.new", 4), ("orders.new.deep", 5)]
        for (index, (topic, n)) in sends.enumerated() {
            try await publisher.send(json: ["type": "publish", "topic": topic, "message": n, "request_id": "p\(index)"])
            _ = try await publisher.next(type: "ack")
        }
        #expect(try await cluster.http(0).post("/api/topics", json: ["name": "orders.made"]).status == 201)
        #expect(try await cluster.http(0).post("/api/topics/orders.made/messages", json: ["message": 6]).status == 200)
        var got: [String] = []
        while got.count < 4 {
            let event = try await subscriber.next(type: "event", timeout: 30)
            got.append("\(event["topic"] as? String ?? "?"):\(event["seq"] as? Int ?? -1):\((event["message"] as? [String: Any])?["payload"] as? Int ?? -1)")
        }
        // Per topic in order; across topics as the node learns of them.
        #expect(got.filter { $0.hasPrefix("orders.new:") } == ["orders.new:1:3", "orders.new:2:4"])
        #expect(Set(got) == ["orders.old:2:1", "orders.new:1:3", "orders.new:2:4", "orders.made:1:6"])
        try await subscriber.send(json: ["type": "ping", "request_id": "end"])
        #expect(try await subscriber.next()["type"] as? String == "pong", "nothing else: \(got)")
        await subscriber.close()
        await publisher.close()
    }
}
