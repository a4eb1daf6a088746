import Foundation
import NIOCore
import PubSubServer
import Testing

/// SPEC 9's Server-Sent Events over real sockets: `GET /api/topics/{name}/events` as an
/// EventSource or `curl -N` sees it.
@Suite("Server-Sent Events")
struct SSETests {
    /// Publishes `count` messages `{"n": i}` over REST.
    static func publish(_ http: TestHTTP, _ topic: String, _ range: ClosedRange<Int>) async throws {
        for i in range {
            let response = try await http.post("/api/topics/\(topic)/messages", json: ["message": ["n": i]])
            #expect(response.status == 200, "\(response.text)")
        }
    }

    /// Creates `topic`, opens its stream and waits for the `subscribed` event.
    static func subscribed(_ port: Int, _ http: TestHTTP, _ topic: String) async throws -> SSEClient {
        _ = try await http.post("/api/topics", json: ["name": topic])
        let stream = try await SSEClient.open(port, "/api/topics/\(topic)/events")
        try await stream.waitFor { $0.event == "subscribed" }
        return stream
    }

    /// Publishes `count` messages of 30 KB over a WebSocket, each after the last one's ack:
    /// more than a stalled stream's queue and the sockets' buffers hold.
    static func flood(_ port: Int, _ topic: String, count: Int) async throws {
        let publisher = try await connect(port)
        let pad = String(repeating: "z", count: 30_000)
        for i in 1...count {
            try await publisher.send(json: ["type": "publish", "topic": topic, "message": ["n": i, "pad": pad], "request_id": "p\(i)"])
            _ = try await publisher.next(type: "ack", timeout: 30)
        }
        await publisher.close()
    }

    @Test func streamsPublishedMessagesWithSeqIDsAndHeartbeats() async throws {
        try await withServer({ $0.heartbeatSeconds = 0.2 }) { port, http in
            _ = try await http.post("/api/topics", json: ["name": "orders"])
            let stream = try await SSEClient.open(port, "/api/topics/orders/events")
            let head = try await stream.head()
            #expect(head.status == 200)
            #expect(head.headers["content-type"] == "text/event-stream")
            #expect(head.headers["cache-control"] == "no-cache")
            let (ack, _) = try await stream.waitFor { $0.event == "subscribed" }
            #expect(ack.id == nil)
            #expect(ack.json["type"] as? String == "ack")
            #expect(ack.json["topic"] as? String == "orders")
            #expect(ack.json["epoch"] is String)
            #expect(try await http.get("/api/stats").json["subscriptions"].flatMap { ($0 as? [String: Any])?["total_count"] as? Int } == 1)

            try await Self.publish(http, "orders", 1...3)
            let (third, events) = try await stream.waitFor { $0.event == "message" && $0.id == "3" }
            let messages = events.filter { $0.event == "message" }
            #expect(messages.map(\.id) == ["1", "2", "3"])
            // The data is the native event frame, as a WebSocket subscriber gets it.
            #expect(third.json["type"] as? String == "event")
            #expect(third.json["topic"] as? String == "orders")
            #expect(third.json["seq"] as? Int == 3)
            #expect((third.json["message"] as? [String: Any])?["payload"] as? [String: Int] == ["n": 3])
            try await stream.waitFor { $0.comment == "heartbeat" }
            await stream.close()
        }
    }

    /// With an engine that answers later (as Redis does), the stream starts once the subscribe
    /// is answered: replay first, then live events, no gap, no duplicate; and it is counted in
    /// /metrics as a connection and a subscription.
    @Test func engineThatAnswersLater() async throws {
        try await TestEngine.$deferred.withValue(true) {
            try await withServer { port, http in
                _ = try await http.post("/api/topics", json: ["name": "later"])
                try await Self.publish(http, "later", 1...3)
                let stream = try await SSEClient.open(port, "/api/topics/later/events?since=1")
                try await stream.waitFor { $0.event == "subscribed" }
                try await Self.publish(http, "later", 4...5)
                #expect(try await stream.waitFor { $0.id == "5" }.all.compactMap(\.id) == ["2", "3", "4", "5"])
                let metrics = try await http.get("/metrics").text.split(separator: "\n")
                #expect(metrics.contains("pubsub_connections 1.0"), "\(metrics.filter { $0.hasPrefix("pubsub_conn") })")
                #expect(metrics.contains("pubsub_subscriptions 1.0"), "\(metrics.filter { $0.hasPrefix("pubsub_sub") })")
                await stream.close()
            }
        }
    }

    /// A payload published with line breaks between its tokens still arrives as its JSON: each
    /// line in a `data:` line of its own.
    @Test func payloadWithLineBreaksStaysOneEvent() async throws {
        try await withServer { port, http in
            let stream = try await Self.subscribed(port, http, "lines")
            let body = "{\"message\":{\r\n\"a\": 1,\n\"b\": [2,\r3]}}"
            #expect(try await http.post("/api/topics/lines/messages", body).status == 200)
            let (event, _) = try await stream.waitFor { $0.event == "message" }
            let payload = (event.json["message"] as? [String: Any])?["payload"] as? [String: Any]
            #expect(payload?["a"] as? Int == 1)
            #expect(payload?["b"] as? [Int] == [2, 3])
            #expect(event.data?.contains("\n") == true, "the payload's lines are data lines")
            await stream.close()
        }
    }

    @Test func resumesFromLastEventIDAndFromSinceWithEpoch() async throws {
        try await withServer { port, http in
            _ = try await http.post("/api/topics", json: ["name": "resume"])
            try await Self.publish(http, "resume", 1...5)
            let epoch = try #require(try await http.get("/api/topics/resume").json["epoch"] as? String)

            let byHeader = try await SSEClient.open(port, "/api/topics/resume/events?since=1", extra: "Last-Event-ID: 3\r\n")
            let (ack, _) = try await byHeader.waitFor { $0.event == "subscribed" }
            #expect(ack.json["replayed"] as? Int == 2)
            #expect(try await byHeader.waitFor { $0.id == "5" }.all.compactMap(\.id) == ["4", "5"])

            let byQuery = try await SSEClient.open(port, "/api/topics/resume/events?since=2&epoch=\(epoch)")
            #expect(try await byQuery.waitFor { $0.event == "subscribed" }.found.json["recovered"] as? Bool == true)
            #expect(try await byQuery.waitFor { $0.id == "5" }.all.compactMap(\.id) == ["3", "4", "5"])

            // Another epoch: everything retained, not recovered, as a native `since`.
            let otherEpoch = try await SSEClient.open(port, "/api/topics/resume/events?since=4&epoch=another")
            #expect(try await otherEpoch.waitFor { $0.event == "subscribed" }.found.json["recovered"] as? Bool == false)
            #expect(try await otherEpoch.waitFor { $0.id == "5" }.all.compactMap(\.id) == ["1", "2", "3", "4", "5"])

            let lastN = try await SSEClient.open(port, "/api/topics/resume/events?last_n=2")
            #expect(try await lastN.waitFor { $0.id == "5" }.all.compactMap(\.id) == ["4", "5"])

            // Then live, after the replay, with no gap and no duplicate.
            try await Self.publish(http, "resume", 6...6)
            for stream in [byHeader, byQuery, otherEpoch, lastN] {
                let ids = try await stream.waitFor { $0.id == "6" }.all.compactMap(\.id)
                #expect(ids.last == "6" && Set(ids).count == ids.count)
                await stream.close()
            }
        }
    }

    @Test func errorsBeforeTheStreamAreJSON() async throws {
        try await withServer { port, http in
            _ = try await http.post("/api/topics", json: ["name": "known"])
            let missing = try await http.get("/api/topics/nope/events")
            #expect(missing.status == 404)
            #expect(missing.json["code"] as? String == "TOPIC_NOT_FOUND")
            for query in ["since=x", "since=1&last_n=2", "epoch=abc", "last_n=-1", "since=1&epoch="] {
                let bad = try await http.get("/api/topics/known/events?\(query)")
                #expect(bad.status == 400, "\(query)")
                #expect(bad.json["code"] as? String == "BAD_REQUEST", "\(query)")
            }
            let badHeader = try await SSEClient.open(port, "/api/topics/known/events", extra: "Last-Event-ID: soon\r\n")
            #expect(try await badHeader.head().status == 400)
            await badHeader.close()
            #expect(try await http.get("/api/topics/bad%20name/events").status == 400)
            let wrongMethod = try await http.post("/api/topics/known/events", "{}")
            #expect(wrongMethod.status == 405)
            #expect(wrongMethod.headers["allow"] == "GET")
        }
        // With auto-create, a stream creates its topic as a subscribe does.
        try await withServer({ $0.autoCreateTopics = true }) { port, http in
            let stream = try await SSEClient.open(port, "/api/topics/fresh/events")
            #expect(try await stream.head().status == 200)
            #expect(try await http.get("/api/topics/fresh").status == 200)
            await stream.close()
        }
    }

    /// `http` with the API key, after creating `topic` with it (a server with `--auth token`).
    static func admin(_ http: TestHTTP, creating topic: String) async throws -> TestHTTP {
        var admin = http
        admin.bearer = AuthTests.apiKey
        #expect(try await admin.post("/api/topics", json: ["name": topic]).status == 201)
        return admin
    }

    @Test func authNeedsATokenWithSubscribeRights() async throws {
        try await AuthTests.withAuthServer { port, http in
            let admin = try await Self.admin(http, creating: "secret")
            let none = try await http.get("/api/topics/secret/events")
            #expect(none.status == 401)
            #expect(none.json["code"] as? String == "UNAUTHORIZED")
            let other = try await AuthTests.token(subscribe: ["public.*"])
            #expect(try await http.get("/api/topics/secret/events?token=\(other)").status == 403)
            let reader = try await AuthTests.token(subscribe: ["secret"])
            // The query parameter, as EventSource needs, and the header, as curl sends.
            let byQuery = try await SSEClient.open(port, "/api/topics/secret/events?token=\(reader)")
            let byHeader = try await SSEClient.open(port, "/api/topics/secret/events", extra: "Authorization: Bearer \(reader)\r\n")
            for stream in [byQuery, byHeader] {
                #expect(try await stream.head().status == 200)
                try await stream.waitFor { $0.event == "subscribed" }
            }
            // Both streams are in the topic's presence, as the token's user.
            let presence = try await admin.get("/api/topics/secret/presence").json["presence"] as? [[String: Any]]
            #expect(presence?.map { $0["user"] as? String } == ["alice", "alice"])
            _ = try await admin.post("/api/topics/secret/messages", json: ["message": ["n": 1]])
            for stream in [byQuery, byHeader] {
                try await stream.waitFor { $0.id == "1" }
                await stream.close()
            }
        }
    }

    @Test func tokenExpiryEndsTheStream() async throws {
        try await AuthTests.withAuthServer { port, http in
            _ = try await Self.admin(http, creating: "brief")
            // 10 s, as AuthTests' expiry test: under a sanitizer on two loaded cores, 2 s passed
            // before the stream had opened, and the server rightly answered 401. When even 10 s
            // pass, the 401 is right again: a new token, three times at most.
            var opened: SSEClient?
            for attempt in 1...3 {
                let minted = Date()
                let token = try await AuthTests.token(subscribe: ["brief"], expiresIn: 10)
                let stream = try await SSEClient.open(port, "/api/topics/brief/events?token=\(token)")
                let status = try await stream.head().status
                if status == 401, attempt < 3, Date().timeIntervalSince(minted) >= 9 {
                    await stream.close()
                    continue
                }
                #expect(status == 200)
                opened = stream
                break
            }
            let stream = try #require(opened)
            try await stream.waitFor { $0.event == "subscribed" }
            let (notice, _) = try await stream.waitFor(timeout: 40) { $0.event == "info" }
            #expect(notice.json["type"] as? String == "error")
            #expect((notice.json["error"] as? [String: Any])?["code"] as? String == "UNAUTHORIZED")
            #expect(try await stream.waitForEnd(), "the chunked body ends")
            await stream.close()
        }
    }

    /// drop-oldest with a client that stops reading: its queue stays bounded, and when it reads
    /// again it is told how many it lost before the newest events.
    @Test func dropOldestNoticeForAClientThatDoesNotRead() async throws {
        try await withServer({ $0.queue.maxMessages = 20 }) { port, http in
            let stream = try await Self.subscribed(port, http, "flood")
            try await stream.pauseReading()
            let count = 500
            try await Self.flood(port, "flood", count: count)
            try await stream.resumeReading()
            let last = String(count)
            let events = try await stream.waitFor(poll: 0.2) { $0.id == last }.all
            let notices = events.filter { $0.event == "info" }.map(\.json)
            let told = notices.contains { notice in notice["msg"] as? String == "messages_dropped" && (notice["count"] as? Int ?? 0) > 0 }
            #expect(told, "a messages_dropped notice with a count")
            let seqs = events.compactMap { event in event.id.flatMap { Int($0) } }
            let ordered = seqs == seqs.sorted() && Set(seqs).count == seqs.count
            #expect(ordered, "in order, no duplicates")
            #expect(seqs.count < count, "some were dropped")
            let dropped = try await http.get("/api/stats").json["messages"].flatMap { ($0 as? [String: Any])?["dropped"] as? Int } ?? 0
            #expect(dropped > 0)
            await stream.close()
        }
    }

    /// disconnect: the stream ends with SLOW_CONSUMER and the connection is closed.
    @Test func disconnectPolicyClosesTheStream() async throws {
        try await withServer({
            $0.queue.maxMessages = 20
            $0.queue.policy = .disconnect
            $0.closeTimeoutSeconds = 2
        }) { port, http in
            let stream = try await Self.subscribed(port, http, "strict")
            try await stream.pauseReading()
            try await Self.flood(port, "strict", count: 500)
            try await stream.resumeReading()
            #expect(try await stream.connection.waitForClose(timeout: 30))
            #expect(try await http.get("/api/topics/strict").json["subscriber_count"] as? Int == 0)
        }
    }

    @Test func deletingTheTopicEndsTheStream() async throws {
        try await withServer { port, http in
            let stream = try await Self.subscribed(port, http, "doomed")
            #expect(try await http.delete("/api/topics/doomed").status == 200)
            let (notice, _) = try await stream.waitFor { $0.event == "info" }
            #expect(notice.json["msg"] as? String == "topic_deleted")
            #expect(notice.json["topic"] as? String == "doomed")
            #expect(try await stream.waitForEnd(), "the chunked body ends")
            #expect(try stream.snapshot()?.body.hasSuffix("\n\n") == true)
            await stream.close()
        }
    }

    /// A client that goes away leaves nothing subscribed (noticed at the next heartbeat at the latest).
    @Test func closedClientIsUnsubscribed() async throws {
        try await withServer({ $0.heartbeatSeconds = 0.2 }) { port, http in
            let stream = try await Self.subscribed(port, http, "left")
            #expect(try await http.get("/api/topics/left").json["subscriber_count"] as? Int == 1)
            let connections = try await http.get("/api/stats").json["connections"].flatMap { ($0 as? [String: Any])?["current"] as? Int }
            #expect(connections == 1)
            await stream.close()
            let deadline = Date().addingTimeInterval(30)
            var count = 1
            while Date() < deadline {
                count = try await http.get("/api/topics/left").json["subscriber_count"] as? Int ?? -1
                if count == 0 { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(count == 0)
        }
    }

    /// Graceful shutdown ends open streams with `server_shutdown` (in-process: the test's
    /// server stops with the stream still open, and would hang if the stream did not end).
    @Test func shutdownEndsStreams() async throws {
        let stream = try await withServer { port, http in
            try await Self.subscribed(port, http, "bye")
        }
        let (notice, _) = try await stream.waitFor { $0.event == "info" }
        #expect(notice.json["msg"] as? String == "server_shutdown")
        #expect(try await stream.connection.waitForClose(timeout: 30))
    }
}

/// The stream in a real browser's EventSource (headless Chromium through selenium).
@Suite("Server-Sent Events in Chromium")
struct SSEBrowserTests {
    /// Tests/Browser/sse_test.py against a server without auth, then one with `--auth token`.
    /// Fails, rather than skips, without Chromium.
    @Test(.timeLimit(.minutes(3))) func eventSourceInChromium() async throws {
        try await PythonScript.installDependencies(
            unless: ["sh", "-c", "python3 -c 'import selenium' && command -v chromium && command -v chromedriver"]
        )
        try await withServer { port, _ in
            let (status, text) = try await PythonScript.run("Tests/Browser/sse_test.py", [String(port), "open"], timeout: 90)
            #expect(status == 0, "\(text)")
            #expect(text.contains("sse browser ok (open)"), "\(text)")
        }
        let jwt = try await AuthTests.token(sub: "sam", subscribe: ["secure"])
        try await AuthTests.withAuthServer { port, _ in
            let (status, text) = try await PythonScript.run(
                "Tests/Browser/sse_test.py", [String(port), "auth", AuthTests.apiKey, jwt], timeout: 90
            )
            #expect(status == 0, "\(text)")
            #expect(text.contains("sse browser ok (auth)"), "\(text)")
        }
    }
}

/// SSE on a cluster: a stream on one node gets what another node publishes, one resumed with
/// `Last-Event-ID` on the other node replays the shared history, and both end when a node
/// deletes the topic.
@Suite("Server-Sent Events on Redis")
struct SSEClusterTests {
    @Test func streamsAcrossNodes() async throws {
        let cluster = try await TestCluster(nodes: 2)
        defer { cluster.stop() }
        #expect(try await cluster.http(0).post("/api/topics", json: ["name": "wide"]).status == 201)
        let stream = try await SSEClient.open(cluster.port(1), "/api/topics/wide/events")
        try await stream.waitFor { $0.event == "subscribed" }
        try await SSETests.publish(cluster.http(0), "wide", 1...3)
        #expect(try await stream.waitFor { $0.id == "3" }.all.compactMap(\.id) == ["1", "2", "3"])

        let resumed = try await SSEClient.open(cluster.port(0), "/api/topics/wide/events", extra: "Last-Event-ID: 1\r\n")
        #expect(try await resumed.waitFor { $0.id == "3" }.all.compactMap(\.id) == ["2", "3"])

        #expect(try await cluster.http(0).delete("/api/topics/wide").status == 200)
        for client in [stream, resumed] {
            #expect(try await client.waitFor { $0.event == "info" }.found.json["msg"] as? String == "topic_deleted")
            #expect(try await client.waitForEnd())
            await client.close()
        }
    }
}
