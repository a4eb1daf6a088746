import Foundation
import Testing

@testable import PubSubServer

/// SPEC 7's limits, each with its error, over real sockets.
@Suite("Limits")
struct LimitsTests {
    /// An upgrade refused by a limit: 503 with a JSON error naming it.
    static func expectRefused(_ port: Int, limit: String, from address: String? = nil) async throws {
        do {
            let ws = try await TestWebSocket.connect(port: port, from: address)
            await ws.close()
            Issue.record("upgraded over \(limit)")
        } catch {
            let connection = try await RawConnection.connect(port: port)
            try await connection.send(HardeningTests.upgrade("/ws", "Sec-WebSocket-Key: \(HardeningTests.key)\r\nSec-WebSocket-Version: 13\r\n"))
            let response = try await connection.response()
            #expect(response.status == 503)
            #expect(response.json["code"] as? String == "LIMIT_EXCEEDED")
            #expect(response.json["limit"] as? String == limit)
        }
    }

    @Test func maxConnections() async throws {
        try await withServer({ $0.maxConnections = 2 }) { port, http in
            let first = try await connect(port)
            let second = try await connect(port)
            try await Self.expectRefused(port, limit: "max_connections")
            #expect(try await http.get("/api/health").status == 200, "REST is not limited")
            await first.close()
            // The place is given back when the connection closes.
            var replaced: TestWebSocket?
            for _ in 0..<100 where replaced == nil {
                replaced = try? await connect(port)
                if replaced == nil { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(replaced != nil)
            await replaced?.close()
            await second.close()
        }
    }

    /// An SSE stream holds a place while it runs, and gives it back when it ends, though its
    /// connection stays open for more requests.
    @Test func sseStreamsCountTowardTheLimit() async throws {
        try await withServer({ $0.maxConnections = 1 }) { port, http in
            #expect(try await http.post("/api/topics", json: ["name": "t"]).status == 201)
            let stream = try await SSEClient.open(port, "/api/topics/t/events")
            #expect(try await stream.head().status == 200)
            try await stream.waitFor { $0.event == "subscribed" }
            try await Self.expectRefused(port, limit: "max_connections")
            // Read as a stream first: a stream let through would never end a plain GET.
            let secondStream = try await SSEClient.open(port, "/api/topics/t/events")
            let secondHead = try await secondStream.head()
            await secondStream.close()
            try #require(secondHead.status == 503)
            let second = try await http.get("/api/topics/t/events")
            #expect(second.json["code"] as? String == "LIMIT_EXCEEDED" && second.json["limit"] as? String == "max_connections")
            // Deleting the topic ends the stream; its keep-alive connection stays open.
            #expect(try await http.delete("/api/topics/t").status == 200)
            #expect(try await stream.waitForEnd())
            var replaced: TestWebSocket?
            for _ in 0..<100 where replaced == nil {
                replaced = try? await connect(port)
                if replaced == nil { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(replaced != nil, "the ended stream gave its place back")
            await replaced?.close()
            await stream.close()
        }
    }

    @Test func maxConnectionsPerAddress() async throws {
        try await withServer({ $0.maxConnectionsPerIP = 1 }) { port, _ in
            let first = try await TestWebSocket.connect(port: port, from: "127.0.0.1")
            let refused = try await RawConnection.connect(port: port)
            try await refused.send(HardeningTests.upgrade("/ws", "Sec-WebSocket-Key: \(HardeningTests.key)\r\nSec-WebSocket-Version: 13\r\n"))
            let response = try await refused.response()
            #expect(response.status == 503)
            #expect(response.json["limit"] as? String == "max_connections_per_ip")
            // Another address has its own count.
            let other = try await TestWebSocket.connect(port: port, from: "127.0.0.2")
            #expect(try await other.next()["msg"] as? String == "connected")
            await other.close()
            await first.close()
        }
    }

    @Test func maxTopics() async throws {
        try await withServer({ $0.maxTopics = 2; $0.autoCreateTopics = true }) { port, http in
            #expect(try await http.post("/api/topics", json: ["name": "a"]).status == 201)
            #expect(try await http.post("/api/topics", json: ["name": "b"]).status == 201)
            let over = try await http.post("/api/topics", json: ["name": "c"])
            #expect(over.status == 507)
            #expect(over.json["code"] as? String == "LIMIT_EXCEEDED")
            #expect(over.json["limit"] as? String == "max_topics")
            // Auto-creation is held to it too.
            let ws = try await connect(port)
            try await ws.send(json: ["type": "subscribe", "topic": "d", "request_id": "s"])
            let error = try await ws.next(type: "error")
            #expect((error["error"] as? [String: Any])?["code"] as? String == "LIMIT_EXCEEDED")
            #expect(try await http.post("/api/topics/e/messages", json: ["message": 1]).status == 507)
            #expect(try await http.get("/api/topics").json["count"] as? Int == 2)
            _ = try await http.delete("/api/topics/a")
            #expect(try await http.post("/api/topics", json: ["name": "c"]).status == 201)
            await ws.close()
        }
    }

    @Test func maxSubscriptionsPerConnection() async throws {
        try await withServer({ $0.maxSubscriptionsPerConnection = 3; $0.autoCreateTopics = true }) { port, _ in
            let ws = try await connect(port)
            for topic in ["t1", "t2", "t3"] { try await subscribe(ws, topic) }
            try await ws.send(json: ["type": "subscribe", "topic": "t4", "request_id": "over"])
            let error = try await ws.next(type: "error")
            #expect(error["request_id"] as? String == "over")
            #expect((error["error"] as? [String: Any])?["code"] as? String == "LIMIT_EXCEEDED")
            // The connection stays; subscribing again to one it has is harmless.
            #expect(try await subscribe(ws, "t2")["action"] as? String == "subscribed")
            try await ws.send(json: ["type": "unsubscribe", "topic": "t1"])
            _ = try await ws.next(type: "ack")
            #expect(try await subscribe(ws, "t4")["action"] as? String == "subscribed")
            await ws.close()
        }
    }

    @Test func defaultSubscriptionLimitIsAThousand() {
        #expect(ServerConfiguration().maxSubscriptionsPerConnection == 1_000)
    }

    /// Over the rate a publish gets RATE_LIMITED and is not published. The rate is one per 100 s,
    /// so that nothing refills while the test runs on a busy machine (refilling is
    /// `TokenBucketTests`'s).
    @Test func publishRateOverWebSocket() async throws {
        try await withServer({ $0.publishRate = 0.01; $0.publishBurst = 5 }) { port, http in
            _ = try await http.post("/api/topics", json: ["name": "r"])
            let ws = try await connect(port)
            // Twenty at once, in one write: the burst passes, the rest is refused.
            let frames = (1...20).map { n in
                TestWebSocket.frameBytes(opcode: 0x1, payload: Array(#"{"type":"publish","topic":"r","message":\#(n),"request_id":"p\#(n)"}"#.utf8))
            }
            try await ws.sendFrames(frames)
            var acked = 0
            var limited = 0
            for n in 1...20 {
                let reply = try await ws.next()
                #expect(reply["request_id"] as? String == "p\(n)", "replies keep request order")
                if reply["type"] as? String == "ack" {
                    acked += 1
                } else {
                    let error = reply["error"] as? [String: Any]
                    #expect(error?["code"] as? String == "RATE_LIMITED")
                    #expect(Int(error?["retry_after"] as? String ?? "") ?? 0 >= 1)
                    limited += 1
                }
            }
            #expect(acked == 5 && limited == 15)
            #expect(try await http.get("/api/topics/r").json["seq"] as? Int == 5, "nothing published past the rate")
            // Phoenix publishes draw from their connection's bucket too; other connections have their own.
            let phoenix = try await PhoenixClient.connect(port, vsn: 2)
            _ = try await phoenix.join(ref: "1")
            for ref in ["2", "3", "4", "5", "6", "7"] { try await phoenix.send("1", ref, "pubsub", "publish", ["topic": "r", "message": ref]) }
            var statuses: [String] = []
            for _ in 0..<6 { statuses.append(try await phoenix.next(event: "phx_reply").payload["status"] as? String ?? "") }
            #expect(statuses == ["ok", "ok", "ok", "ok", "ok", "error"])
            #expect(try await http.get("/api/topics/r").json["seq"] as? Int == 10)
            await phoenix.ws.close()
            await ws.close()
        }
    }

    @Test func publishRateOverREST() async throws {
        try await withServer({ $0.publishRate = 0.01; $0.publishBurst = 2 }) { _, http in
            _ = try await http.post("/api/topics", json: ["name": "r"])
            var statuses: [Int] = []
            var retryAfter: [String] = []
            for n in 1...6 {
                let response = try await http.post("/api/topics/r/messages", json: ["message": n])
                statuses.append(response.status)
                if response.status == 429 {
                    retryAfter.append(response.headers["retry-after"] ?? "")
                    #expect(response.json["code"] as? String == "RATE_LIMITED")
                }
            }
            #expect(statuses.filter { $0 == 200 }.count == 2, "\(statuses)")
            #expect(statuses.filter { $0 == 429 }.count == 4, "\(statuses)")
            #expect(retryAfter.allSatisfy { (Int($0) ?? 0) >= 1 }, "\(retryAfter)")
            #expect(try await http.get("/api/topics/r").json["seq"] as? Int == 2, "nothing published past the rate")
        }
    }
}
