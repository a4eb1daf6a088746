import Foundation
import Testing

/// The same end-to-end behaviour with an engine that answers everything later (the memory
/// engine behind `DeferredBroker`, as a networked engine would): each connection waits for
/// its answers in order, holding what its client sends meanwhile, and nothing is lost,
/// reordered or answered twice.
@Suite("An engine that answers later")
struct DeferredEngineTests {
    func deferred(_ body: () async throws -> Void) async throws {
        try await TestEngine.$deferred.withValue(true) { try await body() }
    }

    @Test func webSocketCommands() async throws {
        try await deferred {
            try await WebSocketTests().subscribePublishUnsubscribePing()
            try await WebSocketTests().badInputKeepsTheConnectionUsable()
            try await WebSocketTests().autoCreateTopics()
            try await WebSocketTests().closingAConnectionRemovesItsSubscriptions()
        }
    }

    @Test func replaysJoinTheLiveStream() async throws {
        try await deferred {
            try await WebSocketTests().replayLastNAndSince()
            try await WebSocketTests().sinceBeyondHistoryIsNotRecovered()
        }
    }

    @Test func deletionsAndOrder() async throws {
        try await deferred {
            try await WebSocketTests().topicDeletionNotifiesSubscribers()
            try await WebSocketTests().burstOfEventsAndAcksThenDeletionArriveInOrder()
        }
    }

    /// Publishes held in batches, a ping, other topics and a missing one in one read: every
    /// reply in request order while each batch waits for its answer.
    @Test func repliesKeepTheirOrderWhileWaiting() async throws {
        try await deferred { try await PublishBatchServerTests().repliesAndEventsKeepTheirOrder() }
    }

    @Test func rest() async throws {
        try await deferred {
            try await RESTTests().topicLifecycle()
            try await RESTTests().publishHistoryAndBroadcast()
            try await RESTTests().healthAndStats()
        }
    }

    @Test(arguments: [1, 2])
    func phoenix(vsn: Int) async throws {
        try await deferred {
            try await PhoenixTests().manualTestPlan(vsn: vsn)
            try await PhoenixTests().leaveRejoinUnmatchedAndErrors(vsn: vsn)
        }
    }

    @Test func publishRateLimits() async throws {
        try await deferred { try await LimitsTests().publishRateOverWebSocket() }
    }

    /// A client that goes while its subscribe is unanswered: the answer finds the connection
    /// gone, nothing is left subscribed, and the server serves the next client.
    @Test func closingWhileWaiting() async throws {
        try await deferred {
            try await withServer { port, http in
                _ = try await http.post("/api/topics", json: ["name": "w"])
                for _ in 0..<20 {
                    let ws = try await connect(port)
                    try await ws.send(json: ["type": "subscribe", "topic": "w"])
                    try await ws.send(json: ["type": "publish", "topic": "w", "message": 1])
                    await ws.close()
                }
                var topic: [String: Any] = [:]
                for _ in 0..<200 {
                    topic = try await http.get("/api/topics/w").json
                    if topic["subscriber_count"] as? Int == 0 { break }
                    try await Task.sleep(for: .milliseconds(10))
                }
                #expect(topic["subscriber_count"] as? Int == 0)
                let ws = try await connect(port)
                #expect(try await subscribe(ws, "w")["subscriber_count"] as? Int == 1)
                await ws.close()
            }
        }
    }
}
