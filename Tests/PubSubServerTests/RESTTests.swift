import Testing

@Suite("REST API")
struct RESTTests {
    @Test func topicLifecycle() async throws {
        try await withServer { _, http in
            let created = try await http.post("/api/topics", json: ["name": "orders"])
            #expect(created.status == 201)
            #expect(created.json["status"] as? String == "created")
            #expect(created.json["topic"] as? String == "orders")
            #expect(created.json["timestamp"] is String)
            #expect(created.headers["content-type"] == "application/json")

            let duplicate = try await http.post("/api/topics", json: ["name": "orders"])
            #expect(duplicate.status == 409)
            #expect(duplicate.json["code"] as? String == "TOPIC_EXISTS")

            let list = try await http.get("/api/topics")
            #expect(list.status == 200)
            #expect(list.json["count"] as? Int == 1)
            let first = (list.json["topics"] as? [[String: Any]])?.first
            #expect(first?["name"] as? String == "orders")
            #expect(first?["subscriber_count"] as? Int == 0)
            #expect(first?["message_count"] as? Int == 0)
            #expect(first?["created_at"] is String)

            let one = try await http.get("/api/topics/orders")
            #expect(one.status == 200)
            #expect(one.json["seq"] as? Int == 0)
            #expect((one.json["epoch"] as? String)?.isEmpty == false)

            let deleted = try await http.delete("/api/topics/orders")
            #expect(deleted.status == 200)
            #expect(deleted.json["status"] as? String == "deleted")
            #expect(try await http.get("/api/topics/orders").status == 404)
            let again = try await http.delete("/api/topics/orders")
            #expect(again.status == 404)
            #expect(again.json["code"] as? String == "TOPIC_NOT_FOUND")
        }
    }

    @Test func badTopicNames() async throws {
        try await withServer { _, http in
            for body in [#"{"name":"bad name"}"#, #"{"name":""}"#, #"{"name":"\#(String(repeating: "a", count: 256))"}"#, #"{"nom":"x"}"#, #"{"name":5}"#] {
                let response = try await http.post("/api/topics", body)
                #expect(response.status == 400, "\(body)")
                #expect(response.json["code"] as? String == "BAD_REQUEST")
                #expect(response.json["error"] is String)
            }
            #expect(try await http.post("/api/topics", json: ["name": String(repeating: "a", count: 255)]).status == 201)
            #expect(try await http.get("/api/topics/bad%20name").status == 400)
        }
    }

    @Test func malformedBodiesMethodsAndPaths() async throws {
        try await withServer { _, http in
            let malformed = try await http.post("/api/topics", "{not json")
            #expect(malformed.status == 400)
            #expect(malformed.json["code"] as? String == "BAD_REQUEST")
            let empty = try await http.post("/api/topics", "")
            #expect(empty.status == 400)
            // Strings are passed on to WebSocket clients as text: a body must be UTF-8.
            _ = try await http.post("/api/topics", json: ["name": "utf8"])
            let notUTF8 = try await http.request("POST", "/api/topics/utf8/messages", body: Array(#"{"message":{"k":""#.utf8) + [0xC3, 0x28] + Array(#""}}"#.utf8))
            #expect(notUTF8.status == 400)
            #expect(notUTF8.json["code"] as? String == "BAD_REQUEST")

            let wrongMethod = try await http.request("PUT", "/api/topics")
            #expect(wrongMethod.status == 405)
            #expect(wrongMethod.headers["allow"] == "GET, POST")
            #expect(wrongMethod.json["error"] is String)
            #expect(wrongMethod.json["code"] as? String == "METHOD_NOT_ALLOWED")
            #expect(try await http.request("POST", "/api/health").status == 405)

            let unknown = try await http.get("/api/nothing-here")
            #expect(unknown.status == 404)
            #expect(unknown.json["code"] as? String == "NOT_FOUND")

            let huge = try await http.post("/api/topics", json: ["name": String(repeating: "x", count: 200_000)])
            #expect(huge.status == 413)
        }
    }

    @Test func publishHistoryAndBroadcast() async throws {
        try await withServer { _, http in
            #expect(try await http.post("/api/topics/nope/messages", json: ["message": 1]).status == 404)
            _ = try await http.post("/api/topics", json: ["name": "metrics"])

            let published = try await http.post("/api/topics/metrics/messages", #"{"message":{"cpu":0.85,"mem":0.65}}"#)
            #expect(published.status == 200)
            #expect(published.json["status"] as? String == "published")
            #expect(published.json["seq"] as? Int == 1)
            #expect(published.json["delivered"] as? Int == 0)
            #expect(published.json["dropped"] as? Int == 0)
            #expect((published.json["message_id"] as? String)?.count == 36)

            let withID = try await http.post("/api/topics/metrics/messages", #"{"message":{"id":"m-7","payload":[1,2,3]}}"#)
            #expect(withID.json["message_id"] as? String == "m-7")

            let broadcast = try await http.post("/api/broadcast", #"{"topic":"metrics","message":"hello"}"#)
            #expect(broadcast.status == 200)
            #expect(broadcast.json["status"] as? String == "sent")
            #expect(broadcast.json["seq"] as? Int == 3)
            #expect(broadcast.json["timestamp"] is String)

            #expect(try await http.post("/api/broadcast", #"{"message":"x"}"#).status == 400)
            #expect(try await http.post("/api/broadcast", #"{"topic":"ghost","message":"x"}"#).status == 404)
            #expect(try await http.post("/api/topics/metrics/messages", #"{"msg":1}"#).status == 400)
            let tooLarge = try await http.post("/api/topics/metrics/messages", json: ["message": String(repeating: "x", count: 70_000)])
            #expect(tooLarge.status == 413)
            #expect(tooLarge.json["code"] as? String == "MESSAGE_TOO_LARGE")

            let history = try await http.get("/api/topics/metrics/messages?last_n=2")
            #expect(history.status == 200)
            let messages = history.json["messages"] as? [[String: Any]] ?? []
            #expect(messages.map { $0["seq"] as? Int } == [2, 3])
            #expect(messages.first?["id"] as? String == "m-7")
            #expect(messages.first?["payload"] as? [Int] == [1, 2, 3])
            #expect(messages.last?["payload"] as? String == "hello")
            #expect(messages.last?["ts"] is String)
            let all = try await http.get("/api/topics/metrics/messages")
            #expect((all.json["messages"] as? [Any])?.count == 3)
            #expect(try await http.get("/api/topics/metrics/messages?last_n=-1").status == 400)
            #expect(try await http.get("/api/topics/ghost/messages").status == 404)
        }
    }

    @Test func healthAndStats() async throws {
        try await withServer { port, http in
            _ = try await http.post("/api/topics", json: ["name": "a"])
            let ws = try await connect(port)
            try await subscribe(ws, "a")
            _ = try await http.post("/api/topics/a/messages", json: ["message": 1])
            _ = try await ws.next(type: "event")

            let health = try await http.get("/api/health")
            #expect(health.status == 200)
            #expect(health.json["status"] as? String == "healthy")
            #expect(health.json["service"] as? String == "pubsub")
            #expect(health.json["uptime_seconds"] is Int)
            #expect(health.json["topics"] as? Int == 1)
            #expect(health.json["subscribers"] as? Int == 1)
            #expect(health.json["connections"] as? Int == 1)

            let stats = try await http.get("/api/stats").json
            let system = stats["system"] as? [String: Any] ?? [:]
            #expect((system["memory_rss_bytes"] as? Int ?? 0) > 0)
            #expect(system["started_at"] is String)
            let connections = stats["connections"] as? [String: Any] ?? [:]
            #expect(connections["current"] as? Int == 1)
            #expect(connections["total_opened"] as? Int == 1)
            let topics = stats["topics"] as? [String: Any] ?? [:]
            #expect(topics["total_count"] as? Int == 1)
            let detail = (topics["details"] as? [[String: Any]])?.first ?? [:]
            #expect(detail["name"] as? String == "a")
            #expect(detail["seq"] as? Int == 1)
            #expect(detail["dropped"] as? Int == 0)
            let subscriptions = stats["subscriptions"] as? [String: Any] ?? [:]
            #expect(subscriptions["total_count"] as? Int == 1)
            #expect((subscriptions["by_topic"] as? [String: Int])?["a"] == 1)
            let messages = stats["messages"] as? [String: Any] ?? [:]
            #expect(messages["published"] as? Int == 1)
            #expect(messages["delivered"] as? Int == 1)
            #expect(messages["dropped"] as? Int == 0)
            await ws.close()
        }
    }
}
