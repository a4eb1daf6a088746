import Foundation
import Testing

@testable import PubSubServer

@Suite("Backpressure end to end")
struct BackpressureTests {
    /// A subscriber that never reads must not slow the publisher or another subscriber.
    @Test func slowSubscriberDoesNotBlockOthers() async throws {
        try await withServer({ $0.queue.maxMessages = 100 }) { port, http in
            _ = try await http.post("/api/topics", json: ["name": "fast"])
            let stalled = try await connect(port)
            try await subscribe(stalled, "fast")
            try await stalled.pauseReading()
            let reader = try await connect(port)
            try await subscribe(reader, "fast")
            let publisher = try await connect(port)

            let count = 2_000
            let pad = String(repeating: "p", count: 4_000)
            var nextSeq = 1
            for i in 1...count {
                try await publisher.send(json: ["type": "publish", "topic": "fast", "message": ["n": i, "pad": pad], "request_id": "p\(i)"])
                let ack = try await publisher.next(type: "ack", timeout: 10)
                #expect(ack["request_id"] as? String == "p\(i)")
                // The reader keeps up, message by message, in order.
                while nextSeq <= i {
                    let event = try await reader.next(type: "event", timeout: 10)
                    #expect(event["seq"] as? Int == nextSeq)
                    nextSeq += 1
                }
            }
            #expect(nextSeq == count + 1)
            let stats = try await http.get("/api/stats").json["messages"] as? [String: Any] ?? [:]
            #expect((stats["dropped"] as? Int ?? 0) > 0, "the stalled subscriber's queue must have dropped")
            await stalled.close()
            await reader.close()
            await publisher.close()
        }
    }

    /// drop-oldest keeps the newest messages and tells the client how many it lost; the
    /// server's log says so too, naming the client.
    @Test func dropOldestTellsTheClient() async throws {
        let logs = LogCapture()
        try await TestLogs.$capture.withValue(logs) { try await dropOldestTellsTheClient(logs) }
    }

    private func dropOldestTellsTheClient(_ logs: LogCapture) async throws {
        try await withServer({ $0.queue.maxMessages = 50 }) { port, http in
            _ = try await http.post("/api/topics", json: ["name": "d"])
            let stalled = try await connect(port)
            try await subscribe(stalled, "d")
            try await stalled.pauseReading()
            let pad = String(repeating: "q", count: 8_000)
            for i in 1...1_500 {
                _ = try await http.post("/api/topics/d/messages", json: ["message": ["n": i, "pad": pad]])
            }
            try await stalled.resumeReading()
            var lastSeq = 0
            var sawNotice = false
            while lastSeq < 1_500 {
                let frame = try await stalled.next(timeout: 10)
                if frame["msg"] as? String == "messages_dropped" {
                    sawNotice = true
                    #expect((frame["count"] as? Int ?? 0) > 0)
                } else if let seq = frame["seq"] as? Int {
                    #expect(seq > lastSeq, "in order, no duplicates")
                    lastSeq = seq
                }
            }
            #expect(sawNotice)
            let dropped = try await logs.lines("messages dropped").first
            #expect(dropped?.level == .warning)
            #expect(dropped?.metadata["client_id"]?.hasPrefix("c-") == true)
            #expect((dropped?.metadata["dropped"].flatMap(Int.init) ?? 0) > 0)
            #expect(dropped?.metadata["policy"] == "drop-oldest")
            await stalled.close()
        }
    }

    /// Replies count against the queue too (SPEC 2.4): they are never dropped, so a client that
    /// leaves more of them unread than the queue holds is closed with SLOW_CONSUMER and 1008.
    @Test func unreadRepliesCloseAsSlowConsumer() async throws {
        // The client reads nothing until the server has closed it: on sanitizer builds that
        // took longer than the 10 s a closing connection gets, and longer than the 2 s the
        // server waits for the client's close once its close frame is in the socket; either
        // cut the connection before the client read its close frame.
        try await withServer({
            $0.queue = .init(maxMessages: 1_000, maxBytes: 4_096, policy: .dropOldest)
            $0.closeTimeoutSeconds = 300
            $0.closeHandshakeSeconds = 300
        }) { port, _, server in
            let ws = try await connect(port)
            try await ws.pauseReading()
            let ping = TestWebSocket.frameBytes(opcode: 0x1, payload: Array(#"{"type":"ping","request_id":"unread"}"#.utf8))
            // Pings until the pongs fill the sockets' buffers and then the 4 KB queue (how
            // much the buffers hold depends on the kernel and its load).
            let deadline = Date().addingTimeInterval(60)
            while server.state.slowConsumerCloses.load(ordering: .relaxed) == 0 {
                guard Date() < deadline else { throw TestError("the queue never overflowed") }
                try await ws.sendFrames(Array(repeating: ping, count: 100))
            }
            try await ws.resumeReading()
            let (lastError, code) = try await ws.readToClose()
            #expect(lastError == "SLOW_CONSUMER")
            #expect(code == 1008)
            await ws.close()
        }
    }

    @Test func disconnectPolicyClosesSlowConsumer() async throws {
        let logs = LogCapture()
        try await TestLogs.$capture.withValue(logs) { try await disconnectPolicyClosesSlowConsumer(logs) }
    }

    private func disconnectPolicyClosesSlowConsumer(_ logs: LogCapture) async throws {
        try await withServer({ $0.queue = .init(maxMessages: 20, maxBytes: 1 << 20, policy: .disconnect) }) { port, http in
            _ = try await http.post("/api/topics", json: ["name": "s"])
            let stalled = try await connect(port)
            try await subscribe(stalled, "s")
            try await stalled.pauseReading()
            let publisher = try await connect(port)
            let pad = String(repeating: "z", count: 32_000)
            var closedAt: Int?
            for i in 1...2_000 {
                try await publisher.send(json: ["type": "publish", "topic": "s", "message": ["pad": pad], "request_id": "p\(i)"])
                let ack = try await publisher.next(type: "ack", timeout: 10)
                if (ack["stats"] as? [String: Int])?["dropped"] == 1 {
                    closedAt = i
                    break
                }
            }
            #expect(closedAt != nil, "the queue never overflowed")
            try await stalled.resumeReading()
            let (lastError, code) = try await stalled.readToClose()
            #expect(lastError == "SLOW_CONSUMER")
            #expect(code == 1008)
            let logged = try await logs.lines("slow consumer closed").first
            #expect(logged?.level == .warning)
            #expect(logged?.metadata["max_queue"] == "20")
            #expect(logged?.metadata["policy"] == "disconnect")
            let closed = try await logs.lines("connection closed").first { $0.metadata["client_id"] == logged?.metadata["client_id"] }
            #expect(closed?.metadata["reason"] == "slow consumer")
            // The publisher is unaffected.
            try await publisher.send(json: ["type": "ping"])
            #expect(try await publisher.next(type: "pong")["type"] as? String == "pong")
            await publisher.close()
        }
    }
}
