import Foundation
import Testing

/// A Phoenix Channels client on the test WebSocket, for either serializer.
struct PhoenixClient {
    let ws: TestWebSocket
    let vsn: Int

    static func connect(_ port: Int, vsn: Int) async throws -> PhoenixClient {
        let path = vsn == 1 ? "/ws/websocket" : "/ws/websocket?vsn=2.0.0"  // no vsn means 1.0.0
        return PhoenixClient(ws: try await TestWebSocket.connect(port: port, path: path), vsn: vsn)
    }

    func send(_ joinRef: String?, _ ref: String?, _ topic: String, _ event: String, _ payload: [String: Any]) async throws {
        if vsn == 2 {
            try await ws.send(String(decoding: try JSONSerialization.data(withJSONObject: [joinRef as Any? ?? NSNull(), ref as Any? ?? NSNull(), topic, event, payload]), as: UTF8.self))
        } else {
            var message: [String: Any] = ["topic": topic, "event": event, "payload": payload, "ref": ref as Any? ?? NSNull()]
            if let joinRef { message["join_ref"] = joinRef }
            try await ws.send(json: message)
        }
    }

    /// (join_ref, ref, topic, event, payload) of the next message.
    func next(timeout: Double = TestWebSocket.patience) async throws -> (joinRef: String?, ref: String?, topic: String, event: String, payload: [String: Any]) {
        let frame = try await ws.nextFrame(timeout: timeout)
        let value = try JSONSerialization.jsonObject(with: Data(frame.data))
        if vsn == 2 {
            let a = value as! [Any]
            return (a[0] as? String, a[1] as? String, a[2] as! String, a[3] as! String, a[4] as! [String: Any])
        }
        let o = value as! [String: Any]
        #expect(o["join_ref"] == nil, "1.0.0 messages carry no join_ref")
        return (nil, o["ref"] as? String, o["topic"] as! String, o["event"] as! String, o["payload"] as! [String: Any])
    }

    /// The next message with `event`, skipping others.
    func next(event: String, timeout: Double = TestWebSocket.patience) async throws -> (joinRef: String?, ref: String?, topic: String, event: String, payload: [String: Any]) {
        while true {
            let message = try await next(timeout: timeout)
            if message.event == event { return message }
        }
    }

    func join(ref: String = "1") async throws -> [String: Any] {
        try await send(ref, ref, "pubsub", "phx_join", [:])
        let reply = try await next(event: "phx_reply")
        #expect(reply.ref == ref)
        #expect(reply.payload["status"] as? String == "ok")
        return reply.payload["response"] as? [String: Any] ?? [:]
    }
}

@Suite("Phoenix Channels")
struct PhoenixTests {
    /// The WebSocket part of the Phoenix system's manual test plan, frame for frame.
    @Test(arguments: [1, 2])
    func manualTestPlan(vsn: Int) async throws {
        try await withServer { port, http in
            _ = try await http.post("/api/topics", json: ["name": "system-metrics"])
            let client = try await PhoenixClient.connect(port, vsn: vsn)

            let joined = try await client.join(ref: "1")
            #expect(joined["type"] as? String == "info")
            #expect(joined["message"] as? String == "Connected successfully")
            #expect((joined["client_id"] as? String)?.hasPrefix("c-") == true)
            #expect(joined["ts"] is String)

            try await client.send("1", "2", "pubsub", "ping", ["echo": "hello"])
            let pong = try await client.next()
            #expect(pong.event == "phx_reply" && pong.ref == "2" && pong.topic == "pubsub")
            #expect(pong.payload["status"] as? String == "ok")
            #expect((pong.payload["response"] as? [String: Any])?["type"] as? String == "pong")
            if vsn == 2 { #expect(pong.joinRef == "1") }

            try await client.send("1", "3", "pubsub", "subscribe", ["topic": "system-metrics"])
            let subscribed = try await client.next()
            #expect(subscribed.ref == "3")
            let ack = subscribed.payload["response"] as? [String: Any] ?? [:]
            #expect(ack["action"] as? String == "subscribed")
            #expect(ack["topic"] as? String == "system-metrics")

            try await client.send("1", "4", "pubsub", "publish", ["topic": "system-metrics", "message": ["cpu": 0.85, "mem": 0.65]])
            var gotReply = false
            var gotPush = false
            for _ in 0..<2 {
                let message = try await client.next()
                if message.event == "phx_reply" {
                    gotReply = message.ref == "4" && (message.payload["response"] as? [String: Any])?["action"] as? String == "published"
                } else if message.event == "message" {
                    #expect(message.topic == "pubsub")
                    #expect(message.ref == nil)
                    if vsn == 2 { #expect(message.joinRef == "1", "2.0.0 pushes carry the channel's join_ref") }
                    #expect(message.payload["type"] as? String == "event")
                    let payload = (message.payload["message"] as? [String: Any])?["payload"] as? [String: Double]
                    gotPush = payload == ["cpu": 0.85, "mem": 0.65]
                }
            }
            #expect(gotReply && gotPush)

            try await client.send("1", "5", "pubsub", "unsubscribe", ["topic": "system-metrics"])
            let unsubscribed = try await client.next()
            #expect((unsubscribed.payload["response"] as? [String: Any])?["action"] as? String == "unsubscribed")

            _ = try await http.post("/api/broadcast", json: ["topic": "system-metrics", "message": ["cpu": 0.1]])
            try await client.send(nil, "6", "phoenix", "heartbeat", [:])
            let heartbeat = try await client.next()  // the broadcast must not come first
            #expect(heartbeat.topic == "phoenix" && heartbeat.event == "phx_reply" && heartbeat.ref == "6")
            #expect(heartbeat.payload["status"] as? String == "ok")
            await client.ws.close()
        }
    }

    @Test(arguments: [1, 2])
    func leaveRejoinUnmatchedAndErrors(vsn: Int) async throws {
        try await withServer { port, http in
            _ = try await http.post("/api/topics", json: ["name": "t"])
            let client = try await PhoenixClient.connect(port, vsn: vsn)

            // Events before joining, and joins of other topics, are unmatched.
            try await client.send("1", "1", "pubsub", "subscribe", ["topic": "t"])
            let early = try await client.next()
            #expect(early.payload["status"] as? String == "error")
            #expect((early.payload["response"] as? [String: Any])?["reason"] as? String == "unmatched topic")
            try await client.send("2", "2", "room:lobby", "phx_join", [:])
            #expect((try await client.next().payload["response"] as? [String: Any])?["reason"] as? String == "unmatched topic")

            _ = try await client.join(ref: "3")
            try await client.send("3", "4", "pubsub", "subscribe", ["topic": "missing"])
            let error = try await client.next()
            #expect(error.payload["status"] as? String == "error")
            let body = (error.payload["response"] as? [String: Any])?["error"] as? [String: Any]
            #expect(body?["code"] as? String == "TOPIC_NOT_FOUND")

            // Malformed frames get an error and the socket stays up.
            try await client.ws.send("[garbage")
            let garbage = try await client.next()
            #expect(garbage.event == "phx_error")
            try await client.ws.send(json: ["no": "envelope"])
            #expect(try await client.next().event == "phx_error")

            // A second join closes the old channel first (its subscriptions go).
            try await client.send("3", "5", "pubsub", "subscribe", ["topic": "t"])
            _ = try await client.next(event: "phx_reply")
            try await client.send("6", "6", "pubsub", "phx_join", [:])
            let closed = try await client.next()
            #expect(closed.event == "phx_close")
            if vsn == 2 { #expect(closed.joinRef == "3") }
            #expect(try await client.next().payload["status"] as? String == "ok")
            #expect(try await http.get("/api/topics/t").json["subscriber_count"] as? Int == 0)

            try await client.send("6", "7", "pubsub", "subscribe", ["topic": "t"])
            _ = try await client.next(event: "phx_reply")
            try await client.send("6", "8", "pubsub", "phx_leave", [:])
            let left = try await client.next()
            #expect(left.event == "phx_reply" && left.ref == "8" && left.payload["status"] as? String == "ok")
            #expect(try await client.next().event == "phx_close")
            #expect(try await http.get("/api/topics/t").json["subscriber_count"] as? Int == 0)
            try await client.send("6", "9", "pubsub", "ping", [:])
            #expect((try await client.next().payload["response"] as? [String: Any])?["reason"] as? String == "unmatched topic")
            await client.ws.close()
        }
    }

    /// Many events in each of the writer's batches: with 2.0.0 each is framed with the
    /// connection's join_ref before the shared body.
    @Test(arguments: [1, 2])
    func burstsOfEventsKeepTheirFraming(vsn: Int) async throws {
        try await withServer { port, http in
            _ = try await http.post("/api/topics", json: ["name": "b"])
            let client = try await PhoenixClient.connect(port, vsn: vsn)
            _ = try await client.join(ref: "7")
            try await client.send("7", "8", "pubsub", "subscribe", ["topic": "b"])
            _ = try await client.next(event: "phx_reply")
            let publisher = try await connect(port)
            let count = 200
            for index in 1...count {
                try await publisher.send(json: ["type": "publish", "topic": "b", "message": index, "ack": false])
            }
            for index in 1...count {
                let push = try await client.next(event: "message")
                if vsn == 2 { #expect(push.joinRef == "7") }
                #expect(push.payload["seq"] as? Int == index)
                #expect((push.payload["message"] as? [String: Any])?["payload"] as? Int == index)
            }
            await publisher.close()
            await client.ws.close()
        }
    }

    @Test func nativeAndPhoenixSubscribersShareTopics() async throws {
        try await withServer { port, http in
            _ = try await http.post("/api/topics", json: ["name": "mixed"])
            let native = try await connect(port)
            try await subscribe(native, "mixed")
            let v1 = try await PhoenixClient.connect(port, vsn: 1)
            let v2 = try await PhoenixClient.connect(port, vsn: 2)
            for client in [v1, v2] {
                _ = try await client.join()
                try await client.send("1", "2", "pubsub", "subscribe", ["topic": "mixed"])
                _ = try await client.next(event: "phx_reply")
            }
            // One from each side; everyone gets both, in order.
            try await native.send(json: ["type": "publish", "topic": "mixed", "message": "from-native", "ack": false])
            try await v2.send("1", "3", "pubsub", "publish", ["topic": "mixed", "message": "from-phoenix"])
            for seq in 1...2 {
                #expect(try await native.next(type: "event")["seq"] as? Int == seq)
                for client in [v1, v2] {
                    let push = try await client.next(event: "message")
                    #expect(push.payload["seq"] as? Int == seq)
                }
            }
            #expect(try await http.get("/api/topics/mixed").json["subscriber_count"] as? Int == 3)
            await native.close()
            await v1.ws.close()
            await v2.ws.close()
        }
    }

    @Test func topicDeletionIsPushedAsInfo() async throws {
        try await withServer { port, http in
            _ = try await http.post("/api/topics", json: ["name": "doomed"])
            let client = try await PhoenixClient.connect(port, vsn: 2)
            _ = try await client.join()
            try await client.send("1", "2", "pubsub", "subscribe", ["topic": "doomed"])
            _ = try await client.next(event: "phx_reply")
            _ = try await http.delete("/api/topics/doomed")
            let info = try await client.next()
            #expect(info.event == "info")
            #expect(info.payload["msg"] as? String == "topic_deleted")
            await client.ws.close()
        }
    }

    @Test func unknownSerializerIsRefused() async throws {
        try await withServer { port, _ in
            await #expect(throws: (any Error).self) {
                _ = try await TestWebSocket.connect(port: port, path: "/ws/websocket?vsn=9.9.9")
            }
        }
    }

    /// Text that is not UTF-8 closes the socket with 1007 whatever the mask key (the wire
    /// decodes first and checks what its scan did not find all ASCII); other UTF-8 is text.
    @Test(arguments: [1, 2])
    func textMustBeUTF8(vsn: Int) async throws {
        try await withServer { port, _ in
            let accented = try await PhoenixClient.connect(port, vsn: vsn)
            _ = try await accented.join()
            try await accented.send("1", "2", "pubsub", "ping", ["echo": "déjà"])
            #expect(try await accented.next(event: "phx_reply").payload["status"] as? String == "ok")
            await accented.ws.close()

            for maskKey: UInt32 in [0, 0x5A17_C0DE] {
                let client = try await PhoenixClient.connect(port, vsn: vsn)
                let frame = vsn == 2
                    ? Array(#"["1","1","phoenix","heartbeat",{"x":"a"#.utf8) + [0xFF] + Array(#""}]"#.utf8)
                    : Array(#"{"topic":"phoenix","event":"heartbeat","ref":"1","payload":{"x":"a"#.utf8) + [0xFF] + Array(#""}}"#.utf8)
                try await client.ws.sendFrame(opcode: 0x1, payload: frame, maskKey: maskKey)
                #expect(try await client.ws.waitForClose() == 1007, "vsn \(vsn), mask key \(maskKey)")
            }
        }
    }

    @Test func silentPhoenixSocketIsClosed() async throws {
        // A 3 s idle timeout against heartbeats 0.25 s apart: with 1 s, under a sanitizer on two
        // loaded cores, a beat came late and the beating socket was closed too.
        try await withServer({ $0.heartbeatSeconds = 0.3; $0.idleTimeoutSeconds = 3 }) { port, _ in
            let quiet = try await PhoenixClient.connect(port, vsn: 2)
            let beating = try await PhoenixClient.connect(port, vsn: 2)
            for i in 0..<16 {
                try await beating.send(nil, "\(i)", "phoenix", "heartbeat", [:])
                _ = try await beating.next()
                try await Task.sleep(for: .milliseconds(250))
            }
            #expect(!beating.ws.isClosed)
            // Closed about 5 s after its last frame (3 s idle, a 0.3 s heartbeat, the 2 s close
            // handshake); 30 s for a sanitizer build on a loaded machine.
            #expect(try await quiet.ws.waitForClose(timeout: 30) == 1001)
            await beating.ws.close()
        }
    }
}

extension PhoenixTests {
    /// Phoenix's 1.0.0 serializer decodes JSON from binary frames as from text frames, and
    /// some clients send them so: join, subscribe, publish and heartbeat in binary frames
    /// work as in text ones (replies come as text). A binary frame that is not JSON gets an
    /// error and the connection stays; 2.0.0's binary frames (its own binary format) and the
    /// native protocol's are refused with BAD_REQUEST.
    @Test func version1JSONInBinaryFrames() async throws {
        try await withServer { port, http in
            _ = try await http.post("/api/topics", json: ["name": "bin"])
            let client = try await PhoenixClient.connect(port, vsn: 1)
            func sendBinary(_ ref: String, _ topic: String, _ event: String, _ payload: [String: Any]) async throws {
                let message: [String: Any] = ["topic": topic, "event": event, "payload": payload, "ref": ref]
                try await client.ws.sendFrame(opcode: 0x2, payload: Array(try JSONSerialization.data(withJSONObject: message)))
            }
            try await sendBinary("1", "pubsub", "phx_join", [:])
            let joined = try await client.next(event: "phx_reply")
            #expect(joined.ref == "1" && joined.payload["status"] as? String == "ok")
            try await sendBinary("2", "pubsub", "subscribe", ["topic": "bin"])
            #expect(try await client.next(event: "phx_reply").payload["status"] as? String == "ok")
            try await sendBinary("3", "pubsub", "publish", ["topic": "bin", "message": ["n": 1]])
            var sawEvent = false
            var sawAck = false
            while !(sawEvent && sawAck) {
                let message = try await client.next()
                if message.event == "message" {
                    sawEvent = ((message.payload["message"] as? [String: Any])?["payload"] as? [String: Any])?["n"] as? Int == 1
                }
                if message.event == "phx_reply" && message.ref == "3" { sawAck = message.payload["status"] as? String == "ok" }
            }
            try await sendBinary("4", "phoenix", "heartbeat", [:])
            let beat = try await client.next(event: "phx_reply")
            #expect(beat.ref == "4" && beat.topic == "phoenix")
            try await client.ws.sendFrame(opcode: 0x2, payload: [0xFF, 0xFE, 0x00])
            let refused = try await client.next()
            #expect(refused.event == "phx_error", "\(refused)")
            #expect((refused.payload["error"] as? [String: Any])?["code"] as? String == "BAD_REQUEST")
            try await client.send(nil, "5", "phoenix", "heartbeat", [:])
            #expect(try await client.next(event: "phx_reply").ref == "5", "the connection stays")
            await client.ws.close()

            let version2 = try await PhoenixClient.connect(port, vsn: 2)
            try await version2.ws.sendFrame(opcode: 0x2, payload: Array(#"["1","1","pubsub","phx_join",{}]"#.utf8))
            let notRead = try await version2.next()
            #expect(notRead.event == "phx_error", "\(notRead)")
            #expect((notRead.payload["error"] as? [String: Any])?["message"] as? String == "binary frames are not supported: send JSON in text frames")
            await version2.ws.close()
        }
    }
}

@Suite("Phoenix interoperability")
struct PhoenixInteropTests {
    /// An unmodified third-party Phoenix client from PyPI (installed by scripts/install-test-deps.sh).
    @Test func phoenixChannelsPythonClient() async throws {
        try await PythonScript.requireModules(["phoenix_channels_python_client"])
        try await withServer { port, _ in
            let (status, text) = try await PythonScript.run("Tests/Interop/phoenix_client_roundtrip.py", [String(port)], timeout: 90)
            #expect(status == 0, "\(text)")
            #expect(text.contains("phoenix interop ok (vsn 1)"), "\(text)")
            #expect(text.contains("phoenix interop ok (vsn 2)"), "\(text)")
        }
    }
}
