import Foundation
import NIOCore
import Testing

/// `/ws?batch=1` end to end, over real sockets: several messages per text frame, one per line,
/// both ways (docs/protocol.md, "Batched frames").
@Suite("Batched frames")
struct BatchedFramesTests {
    /// The messages of a text frame: one per line on a batched connection.
    static func lines(_ frame: TestWebSocket.Frame) -> [[String: Any]] {
        frame.data.split(separator: 0x0A).map { line in
            (try? JSONSerialization.jsonObject(with: Data(line))) as? [String: Any] ?? ["unparsed": String(decoding: line, as: UTF8.self)]
        }
    }

    /// Text frames until `done` says the lines so far are all, each as its lines.
    static func frames(of ws: TestWebSocket, until done: ([[String: Any]]) -> Bool) async throws -> [[[String: Any]]] {
        var frames: [[[String: Any]]] = []
        while !done(frames.flatMap { $0 }) {
            let frame = try await ws.nextFrame(timeout: 30)
            if frame.opcode == 0x1 { frames.append(lines(frame)) }
        }
        return frames
    }

    static func publish(_ topic: String, _ message: Any) throws -> [UInt8] {
        let text = try JSONSerialization.data(withJSONObject: ["type": "publish", "topic": topic, "message": message, "ack": false])
        return TestWebSocket.frameBytes(opcode: 0x1, payload: Array(text))
    }

    /// Publishes that arrive together are queued together: the batched subscriber gets them
    /// several to a frame, every one, in order; a plain subscriber on the same topic still
    /// gets one object per frame.
    @Test func burstArrivesInBatches() async throws {
        try await withServer { port, http in
            _ = try await http.post("/api/topics", json: ["name": "burst"])
            let batched = try await connect(port, path: "/ws?batch=1")
            try await subscribe(batched, "burst")
            let plain = try await connect(port)
            try await subscribe(plain, "burst")
            let publisher = try await connect(port)
            let count = 600
            for start in stride(from: 1, through: count, by: 100) {
                try await publisher.sendFrames(try (start..<(start + 100)).map { try Self.publish("burst", ["n": $0]) })
            }
            let frames = try await Self.frames(of: batched) { $0.count >= count }
            let seqs = frames.flatMap { $0 }.map { $0["seq"] as? Int ?? -1 }
            #expect(seqs == Array(1...count), "every event, in order, nothing else")
            #expect(frames.contains { $0.count > 1 }, "events shared frames")
            #expect(frames.count < count)
            for n in 1...count {
                let frame = try await plain.nextFrame(timeout: 30)
                #expect(!frame.data.contains(0x0A), "one object per frame without batch=1")
                #expect(frame.json["seq"] as? Int == n)
            }
            await batched.close()
            await plain.close()
            await publisher.close()
        }
    }

    /// Several commands in one frame are each answered, in order, errors included, and their
    /// replies share a frame; a ping between two such frames is answered by a pong frame
    /// between two batches.
    @Test func severalCommandsInOneFrame() async throws {
        try await withServer { port, http in
            _ = try await http.post("/api/topics", json: ["name": "multi"])
            let ws = try await connect(port, path: "/ws?batch=1")
            let first = [
                #"{"type":"subscribe","topic":"multi","request_id":"r1"}"#, "",
                #"{"type":"publish","topic":"multi","message":{"k":1},"request_id":"r2"}"#,
                #"{"type":"ping","request_id":"r3"}"#, "  ",
                #"{"type":"publish","topic":"multi""#,
                #"{"type":"subscribe","topic":"absent","request_id":"r5"}"#,
            ].joined(separator: "\n") + "\n"
            let second = [#"{"type":"ping","request_id":"r6"}"#, #"{"type":"unsubscribe","topic":"multi","request_id":"r7"}"#].joined(separator: "\r\n")
            try await ws.sendFrames([
                TestWebSocket.frameBytes(opcode: 0x1, payload: Array(first.utf8)),
                TestWebSocket.frameBytes(opcode: 0x9, payload: Array("hi".utf8)),
                TestWebSocket.frameBytes(opcode: 0x1, payload: Array(second.utf8)),
            ])
            var frames: [TestWebSocket.Frame] = []
            var replies: [[String: Any]] = []
            while replies.count < 7 {
                let frame = try await ws.nextFrame(timeout: 30)
                frames.append(frame)
                if frame.opcode == 0x1 { replies += Self.lines(frame).filter { $0["type"] as? String != "event" } }
            }
            #expect(replies.map { $0["type"] as? String } == ["ack", "ack", "pong", "error", "error", "pong", "ack"])
            #expect(replies.map { $0["request_id"] as? String } == ["r1", "r2", "r3", nil, "r5", "r6", "r7"])
            #expect((replies[3]["error"] as? [String: Any])?["code"] as? String == "BAD_REQUEST")
            #expect((replies[4]["error"] as? [String: Any])?["code"] as? String == "TOPIC_NOT_FOUND")
            // First read's replies, the pong to the ping, the second read's replies.
            let texts = frames.filter { $0.opcode == 0x1 }
            #expect(texts.count == 2)
            #expect(texts.first.map { Self.lines($0).filter { $0["type"] as? String != "event" }.count } == 5)
            #expect(frames.map(\.opcode) == [0x1, 0xA, 0x1])
            #expect(frames.count == 3 && frames[1].text == "hi")
            await ws.close()
        }
    }

    /// Behind a full socket, the drop notice leads the next batch and `topic_deleted` shares a
    /// frame with the last events, after them.
    @Test func noticesInsideBatches() async throws {
        try await withServer({ $0.queue.maxMessages = 50 }) { port, http in
            _ = try await http.post("/api/topics", json: ["name": "full"])
            let stalled = try await connect(port, path: "/ws?batch=1")
            try await subscribe(stalled, "full")
            try await stalled.pauseReading()
            let publisher = try await connect(port)
            let pad = String(repeating: "z", count: 20_000)
            let count = 400
            for start in stride(from: 1, through: count, by: 20) {
                try await publisher.sendFrames(try (start..<(start + 20)).map { try Self.publish("full", ["n": $0, "pad": pad]) })
            }
            try await publisher.send(#"{"type":"ping","request_id":"done"}"#)
            _ = try await publisher.next(type: "pong", timeout: 30)
            #expect(try await http.delete("/api/topics/full").status == 200)
            try await stalled.resumeReading()
            let frames = try await Self.frames(of: stalled) { $0.last?["msg"] as? String == "topic_deleted" }
            let all = frames.flatMap { $0 }
            let seqs = all.compactMap { $0["seq"] as? Int }
            #expect(seqs == seqs.sorted() && Set(seqs).count == seqs.count, "in order, no duplicates")
            #expect(seqs.last == count, "the newest kept")
            let notice = frames.first { $0.first?["msg"] as? String == "messages_dropped" }
            #expect(notice != nil && notice!.count > 1, "the drop notice leads a batch of events")
            #expect((notice?.first?["count"] as? Int ?? 0) > 0)
            #expect(frames.last!.count > 1 && frames.last!.dropLast().allSatisfy { $0["type"] as? String == "event" })
            await stalled.close()
            await publisher.close()
        }
    }

    /// Large events make batch frames with 2-, 4- and 10-byte headers, each minimal (the test
    /// client parses every length form).
    @Test func largeBatchesAreWholeFrames() async throws {
        try await withServer { port, http in
            _ = try await http.post("/api/topics", json: ["name": "big"])
            let ws = try await connect(port, path: "/ws?batch=1")
            try await subscribe(ws, "big")
            let publisher = try await connect(port)
            let sizes = [10, 200, 30_000, 30_000, 30_000, 40_000]
            try await publisher.sendFrames(try sizes.map { try Self.publish("big", String(repeating: "b", count: $0)) })
            let frames = try await Self.frames(of: ws) { $0.count >= sizes.count }
            let payloads = frames.flatMap { $0 }.map { (($0["message"] as? [String: Any])?["payload"] as? String)?.count }
            #expect(payloads == sizes)
            #expect(frames.count < sizes.count)
            await ws.close()
            await publisher.close()
        }
    }

    /// `batch` takes 0 or 1; anything else is refused at the upgrade with 400. Phoenix's path
    /// leaves its query to the client's params.
    @Test func badBatchValuesAreRefused() async throws {
        try await withServer { port, _ in
            for query in ["batch=2", "batch=x", "batch", "batch=1&batch=1", "batch=", "token=t&batch=true"] {
                let raw = try await RawConnection.connect(port: port)
                try await raw.send(
                    "GET /ws?\(query) HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                )
                let response = try await raw.response(timeout: 30)
                #expect(response.status == 400, "\(query)")
                #expect(response.text.contains("BAD_REQUEST") && response.text.contains("batch"), "\(query)")
                await raw.close()
            }
            let off = try await connect(port, path: "/ws?batch=0")
            try await off.sendFrames([
                TestWebSocket.frameBytes(opcode: 0x1, payload: Array(#"{"type":"ping","request_id":"a"}"#.utf8)),
                TestWebSocket.frameBytes(opcode: 0x1, payload: Array(#"{"type":"ping","request_id":"b"}"#.utf8)),
            ])
            #expect(try await off.nextFrame(timeout: 30).json["request_id"] as? String == "a")
            #expect(try await off.nextFrame(timeout: 30).json["request_id"] as? String == "b")
            // Without batch=1 a line break is JSON whitespace only: two objects are one bad request.
            try await off.send("{\"type\":\"ping\"}\n{\"type\":\"ping\"}")
            #expect(try await off.next(timeout: 30)["type"] as? String == "error")
            await off.close()
            let phoenix = try await TestWebSocket.connect(port: port, path: "/ws/websocket?vsn=2.0.0&batch=7")
            #expect(phoenix.responseHead.hasPrefix("HTTP/1.1 101"))
            await phoenix.close()
        }
    }

    /// A batched connection declines permessage-deflate (the shared frames are compressed one
    /// message each) and gets its batches uncompressed.
    @Test func batchDeclinesCompression() async throws {
        try await withServer { port, http in
            _ = try await http.post("/api/topics", json: ["name": "nz"])
            let ws = try await TestWebSocket.connect(port: port, path: "/ws?batch=1", extraHeaders: CompressionTests.offer)
            #expect(!ws.responseHead.contains("Sec-WebSocket-Extensions"))
            _ = try await ws.next()  // connected
            try await subscribe(ws, "nz")
            let publisher = try await connect(port)
            try await publisher.sendFrames(try (1...20).map { try Self.publish("nz", ["n": $0]) })
            var frames: [TestWebSocket.Frame] = []
            while frames.flatMap(Self.lines).count < 20 {
                frames.append(try await ws.nextFrame(timeout: 30))
            }
            #expect(frames.allSatisfy { !$0.compressed })
            #expect(frames.flatMap(Self.lines).map { $0["seq"] as? Int } == Array(1...20))
            #expect(frames.count < 20)
            await ws.close()
            await publisher.close()
        }
    }
}
