import Foundation
import PubSubCore
import PubSubServer
import Testing

/// SPEC 9 presence over real sockets: the REST list, the diffs a subscriber asks for, users
/// from tokens, and the memory engine both at once and behind a deferred engine.
@Suite("Presence")
struct PresenceTests {
    /// The client ids of a presence frame's `joins` or `leaves`, or of a REST list.
    static func clientIDs(_ entries: Any?) -> [String] {
        (entries as? [[String: Any]] ?? []).compactMap { $0["client_id"] as? String }
    }

    /// The client id a connection was given (its `connected` frame is read by `connect`, so
    /// it is learnt from the presence list of a topic only it is in).
    static func connectedID(_ port: Int) async throws -> (TestWebSocket, String) {
        let ws = try await TestWebSocket.connect(port: port, path: "/ws", answerPings: true)
        let hello = try await ws.next()
        return (ws, try #require(hello["client_id"] as? String))
    }

    @Test(arguments: [false, true])
    func listAndDiffs(deferred: Bool) async throws {
        try await TestEngine.$deferred.withValue(deferred) {
            try await withServer { port, http in
                #expect(try await http.post("/api/topics", json: ["name": "room"]).status == 201)
                let empty = try await http.get("/api/topics/room/presence")
                #expect(empty.status == 200)
                #expect(empty.json["topic"] as? String == "room" && empty.json["count"] as? Int == 0)
                #expect(Self.clientIDs(empty.json["presence"]).isEmpty)

                let (watcher, watcherID) = try await Self.connectedID(port)
                let ack = try await subscribe(watcher, "room", extra: ["presence": true])
                #expect(ack["action"] as? String == "subscribed")
                // First the whole list as joins (itself included), then the changes.
                let state = try await watcher.next(type: "presence")
                #expect(state["topic"] as? String == "room")
                #expect(Self.clientIDs(state["joins"]) == [watcherID] && Self.clientIDs(state["leaves"]).isEmpty)
                let entry = try #require((state["joins"] as? [[String: Any]])?.first)
                #expect(entry["user"] is NSNull, "no user without authentication")
                #expect((entry["joined_at"] as? String)?.hasSuffix("Z") == true)

                let (other, otherID) = try await Self.connectedID(port)
                try await subscribe(other, "room")
                let joined = try await watcher.next(type: "presence")
                #expect(Self.clientIDs(joined["joins"]) == [otherID] && Self.clientIDs(joined["leaves"]).isEmpty)
                try await other.send(json: ["type": "ping", "request_id": "p"])
                #expect(try await other.next()["type"] as? String == "pong", "a subscriber that did not ask gets no presence")

                let list = try await http.get("/api/topics/room/presence").json
                #expect(Self.clientIDs(list["presence"]) == [watcherID, otherID], "oldest subscription first")
                #expect(list["count"] as? Int == 2)

                // An unsubscribe and a closed connection are leaves.
                try await other.send(json: ["type": "unsubscribe", "topic": "room"])
                _ = try await other.next(type: "ack")
                let left = try await watcher.next(type: "presence")
                #expect(Self.clientIDs(left["leaves"]) == [otherID] && Self.clientIDs(left["joins"]).isEmpty)
                try await subscribe(other, "room")
                #expect(Self.clientIDs(try await watcher.next(type: "presence")["joins"]) == [otherID])
                await other.close()
                #expect(Self.clientIDs(try await watcher.next(type: "presence", timeout: 30)["leaves"]) == [otherID])
                try await eventually("the closed connection's entry gone", seconds: 30) {
                    Self.clientIDs(try await http.get("/api/topics/room/presence").json["presence"]) == [watcherID]
                }
                await watcher.close()
            }
        }
    }

    @Test func subscribingAgainKeepsOneEntryAndOneStream() async throws {
        try await withServer { port, http in
            #expect(try await http.post("/api/topics", json: ["name": "room"]).status == 201)
            let (ws, id) = try await Self.connectedID(port)
            try await subscribe(ws, "room", extra: ["presence": true])
            #expect(Self.clientIDs(try await ws.next(type: "presence")["joins"]) == [id])
            // Idempotent: an ack, no second list, no diff.
            try await subscribe(ws, "room", extra: ["presence": true])
            try await ws.send(json: ["type": "ping", "request_id": "p"])
            #expect(try await ws.next()["type"] as? String == "pong")
            #expect(Self.clientIDs(try await http.get("/api/topics/room/presence").json["presence"]) == [id])
            await ws.close()
        }
    }

    /// A Phoenix channel's subscriptions are in the list, and its `presence` field is ignored.
    @Test func phoenixSubscriptionsAreListedAndGetNoFrames() async throws {
        try await withServer { port, http in
            #expect(try await http.post("/api/topics", json: ["name": "room"]).status == 201)
            let phoenix = try await PhoenixClient.connect(port, vsn: 2)
            let phoenixID = try #require(try await phoenix.join()["client_id"] as? String)
            try await phoenix.send("1", "2", "pubsub", "subscribe", ["topic": "room", "presence": true])
            #expect(try await phoenix.next(event: "phx_reply").payload["status"] as? String == "ok")
            let (native, nativeID) = try await Self.connectedID(port)
            try await subscribe(native, "room")
            #expect(Self.clientIDs(try await http.get("/api/topics/room/presence").json["presence"]) == [phoenixID, nativeID])
            try await phoenix.send("1", "3", "pubsub", "ping", [:])
            let next = try await phoenix.next()
            #expect(next.event == "phx_reply" && next.ref == "3", "no presence push before the ping's reply")
            await native.close()
        }
    }

    @Test func errors() async throws {
        try await withServer { port, http in
            let missing = try await http.get("/api/topics/nope/presence")
            #expect(missing.status == 404 && missing.json["code"] as? String == "TOPIC_NOT_FOUND")
            #expect(try await http.get("/api/topics/bad%20name/presence").status == 400)
            let post = try await http.post("/api/topics/nope/presence", "{}")
            #expect(post.status == 405 && post.headers["allow"] == "GET")
            let ws = try await connect(port)
            try await ws.send(json: ["type": "subscribe", "topic": "nope", "presence": true, "request_id": "s"])
            let error = try await ws.next(type: "error")
            #expect((error["error"] as? [String: Any])?["code"] as? String == "TOPIC_NOT_FOUND")
            try await ws.send(json: ["type": "subscribe", "topic": "nope", "presence": "yes", "request_id": "s2"])
            let bad = try await ws.next(type: "error")
            #expect((bad["error"] as? [String: Any])?["code"] as? String == "BAD_REQUEST")
            await ws.close()
        }
    }

    /// With `--auth token` an entry's user is the token's `sub`, and reading the list takes
    /// the right to subscribe to the topic.
    @Test func usersFromTokens() async throws {
        try await AuthTests.withAuthServer { port, _ in
            let admin = TestHTTP(port: port, bearer: AuthTests.apiKey)
            #expect(try await admin.post("/api/topics", json: ["name": "room"]).status == 201)
            let carol = try await AuthTests.token(sub: "carol", subscribe: ["room"])
            let ws = try await connect(port, path: "/ws?token=\(carol)")
            try await subscribe(ws, "room", extra: ["presence": true])
            let state = try await ws.next(type: "presence")
            #expect((state["joins"] as? [[String: Any]])?.first?["user"] as? String == "carol")
            let list = try await TestHTTP(port: port, bearer: carol).get("/api/topics/room/presence")
            #expect(list.status == 200)
            #expect((list.json["presence"] as? [[String: Any]])?.first?["user"] as? String == "carol")
            #expect(try await TestHTTP(port: port).get("/api/topics/room/presence").status == 401)
            let outsider = try await AuthTests.token(sub: "dave", subscribe: ["elsewhere"])
            #expect(try await TestHTTP(port: port, bearer: outsider).get("/api/topics/room/presence").status == 403)
            await ws.close()
        }
    }
    /// A wildcard subscriber is not listed in the topics it matches; subscribing one by name
    /// lists it, and unsubscribing that name takes it out while the pattern keeps its events.
    @Test func patternSubscribersAreListedOnlyByName() async throws {
        try await withServer { port, http in
            #expect(try await http.post("/api/topics", json: ["name": "room.a"]).status == 201)
            let (ws, id) = try await Self.connectedID(port)
            #expect(try await subscribe(ws, "room.*")["pattern"] as? Bool == true)
            #expect(Self.clientIDs(try await http.get("/api/topics/room.a/presence").json["presence"]).isEmpty)
            try await subscribe(ws, "room.a")
            #expect(Self.clientIDs(try await http.get("/api/topics/room.a/presence").json["presence"]) == [id])
            try await ws.send(json: ["type": "unsubscribe", "topic": "room.a", "request_id": "u"])
            _ = try await ws.next(type: "ack")
            #expect(Self.clientIDs(try await http.get("/api/topics/room.a/presence").json["presence"]).isEmpty)
            _ = try await http.post("/api/topics/room.a/messages", json: ["message": 1])
            #expect(try await ws.next(type: "event")["topic"] as? String == "room.a", "still subscribed through the pattern")

            try await ws.send(json: ["type": "subscribe", "topic": "room.>", "presence": true, "request_id": "p"])
            let refused = try await ws.next(type: "error")
            #expect((refused["error"] as? [String: Any])?["code"] as? String == "BAD_REQUEST" && refused["request_id"] as? String == "p")
            await ws.close()
        }
    }
}
