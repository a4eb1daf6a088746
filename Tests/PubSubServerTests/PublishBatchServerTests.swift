import Foundation
import Testing

/// A read's consecutive publishes are published together (WebSocketSession's batch): every
/// reply still comes in request order, events keep their topic's order, and an error or a
/// command of another kind between publishes stays where it was sent.
@Suite("Publishes sent together")
struct PublishBatchServerTests {
    @Test func repliesAndEventsKeepTheirOrder() async throws {
        try await withServer { port, http in
            _ = try await http.post("/api/topics", json: ["name": "a"])
            _ = try await http.post("/api/topics", json: ["name": "b"])
            let ws = try await connect(port)
            try await subscribe(ws, "a")
            try await subscribe(ws, "b")
            func publish(_ topic: String, _ n: Int, ack: Bool = true) -> [UInt8] {
                let text = #"{"type":"publish","topic":"\#(topic)","message":{"n":\#(n)},"request_id":"p\#(n)"\#(ack ? "" : #","ack":false"#)}"#
                return TestWebSocket.frameBytes(opcode: 0x1, payload: Array(text.utf8))
            }
            // One TCP write: more publishes to "a" than one batch holds (PublishBatch.limit), with a
            // ping, publishes to another topic and to a missing one, and a ping frame between them.
            var frames = [publish("a", 1), publish("a", 2, ack: false), publish("a", 3)]
            frames.append(TestWebSocket.frameBytes(opcode: 0x1, payload: Array(#"{"type":"ping","request_id":"q"}"#.utf8)))
            frames += [publish("b", 4), publish("missing", 5), publish("a", 6)]
            frames += (7..<77).map { publish("a", $0, ack: false) }
            frames.append(TestWebSocket.frameBytes(opcode: 0x9, payload: Array("hi".utf8)))
            frames.append(publish("a", 77))
            try await ws.sendFrames(frames)

            var replies: [String] = []
            var events: [String: [(seq: Int, n: Int)]] = [:]
            var acks: [String: [String: Any]] = [:]
            while replies.last != "p77" {
                let frame = try await ws.nextFrame()
                if frame.opcode == 0xA { continue }  // the WebSocket pong, answered at once
                let json = frame.json
                switch json["type"] as? String {
                case "event":
                    let payload = (json["message"] as? [String: Any])?["payload"] as? [String: Any]
                    events[json["topic"] as! String, default: []].append((json["seq"] as! Int, payload?["n"] as! Int))
                case "ack":
                    let id = json["request_id"] as! String
                    replies.append(id)
                    acks[id] = json
                case "pong": replies.append("pong")
                case "error":
                    #expect((json["error"] as? [String: Any])?["code"] as? String == "TOPIC_NOT_FOUND")
                    replies.append("error:\(json["request_id"] as? String ?? "")")
                default: Issue.record("unexpected frame \(json)")
                }
            }
            #expect(replies == ["p1", "p3", "pong", "p4", "error:p5", "p6", "p77"])
            #expect(events["a"]?.map(\.seq) == Array(1...75))
            #expect(events["a"]?.map(\.n) == [1, 2, 3, 6] + Array(7...77))
            #expect(events["b"]?.map(\.seq) == [1])
            for (id, seq) in [("p1", 1), ("p3", 3), ("p4", 1), ("p6", 4), ("p77", 75)] {
                #expect(acks[id]?["seq"] as? Int == seq, "\(id)")
                #expect((acks[id]?["stats"] as? [String: Any])?["delivered"] as? Int == 1, "\(id)")
            }
            await ws.close()
        }
    }
}
