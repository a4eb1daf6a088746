import Testing

@testable import PubSubClient

/// Reading the server's frames (docs/protocol.md, captured examples) and writing the client's.
@Suite("Client frames")
struct ServerFrameTests {
    @Test func anEventKeepsItsPayloadByteForByte() {
        let text = #"{"type":"event","topic":"orders","seq":2,"message":{"id":"m1","payload":{"b": 1.50, "a":[1, "x\"}"]}},"ts":"2026-11-24T18:42:21.968Z"}"#
        #expect(ServerFrame(text: text) == .event(
            topic: "orders", seq: 2, id: "m1", payload: RawJSON(trusted: #"{"b": 1.50, "a":[1, "x\"}"]}"#), timestamp: "2026-11-24T18:42:21.968Z"
        ))
    }

    @Test func acksAndErrors() {
        let subscribed = #"{"type":"ack","action":"subscribed","topic":"orders","subscriber_count":1,"seq":41,"epoch":"72dfd2c4d6cd8c2e","replayed":5,"recovered":false,"request_id":"s1","ts":"t"}"#
        #expect(ServerFrame(text: subscribed) == .subscribed(.init(requestID: "s1", topic: "orders", seq: 41, epoch: "72dfd2c4d6cd8c2e", replayed: 5, pattern: false)))
        let published = #"{"type":"ack","action":"published","topic":"orders","message_id":"m1","seq":2,"stats":{"delivered":1,"dropped":0},"request_id":"p1","ts":"t"}"#
        #expect(ServerFrame(text: published) == .published(requestID: "p1", PublishReceipt(topic: "orders", messageID: "m1", seq: 2, delivered: 1, dropped: 0)))
        let redis = #"{"type":"ack","action":"published","topic":"orders","message_id":"m1","seq":2,"request_id":"p1","ts":"t"}"#
        #expect(ServerFrame(text: redis) == .published(requestID: "p1", PublishReceipt(topic: "orders", messageID: "m1", seq: 2, delivered: nil, dropped: nil)))
        let error = #"{"type":"error","error":{"code":"TOPIC_NOT_FOUND","message":"topic 'nope' does not exist","topic":"nope"},"request_id":"s2","ts":"t"}"#
        #expect(ServerFrame(text: error) == .error(requestID: "s2", code: "TOPIC_NOT_FOUND", message: "topic 'nope' does not exist"))
        #expect(ServerFrame(text: #"{"type":"info","msg":"connected","client_id":"c-1","ts":"t"}"#) == .connected(clientID: "c-1"))
        #expect(ServerFrame(text: #"{"type":"info","msg":"topic_deleted","topic":"orders","ts":"t"}"#) == .topicDeleted(topic: "orders"))
        #expect(ServerFrame(text: #"{"type":"pong","ts":"t"}"#) == .other)
        #expect(ServerFrame(text: #"{"type":"event","topic":"orders"#) == nil)
        #expect(ServerFrame(text: "[1,2]") == nil)
    }

    @Test func clientFramesEscapeWhatTheyCarry() {
        #expect(ClientFrame.subscribe("orders", requestID: "s1", since: 41, epoch: "e\"1") == #"{"type":"subscribe","topic":"orders","since":41,"epoch":"e\"1","request_id":"s1"}"#)
        #expect(ClientFrame.publish("orders", message: RawJSON(trusted: "[1]"), requestID: nil) == #"{"type":"publish","topic":"orders","message":[1],"ack":false}"#)
        #expect(jsonString("a\nb\u{1}\\") == #""a\nb\u0001\\""#)
    }

    @Test func urlsAndMessages() throws {
        #expect(try PubSubClient.socketURL("http://127.0.0.1:4000") == "ws://127.0.0.1:4000/ws")
        #expect(try PubSubClient.socketURL("https://example.com/") == "wss://example.com/ws")
        #expect(try PubSubClient.socketURL("ws://h:1/custom") == "ws://h:1/custom")
        #expect(throws: PubSubClientError.invalidURL("ftp://h")) { try PubSubClient.socketURL("ftp://h") }
        #expect(throws: PubSubClientError.self) { try RawJSON("not json") }
        struct Order: Codable, Equatable { var total: Int }
        #expect(try RawJSON(#"{"total":12}"#).decode(Order.self) == Order(total: 12))
        #expect(try RawJSON(encoding: "a/b").text == #""a/b""#)
    }
}
