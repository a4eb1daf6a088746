import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// SPEC 9 on the Redis engine: two `pubsub` processes on one real Redis share each topic's
/// presence list, and a subscriber on one node is told of joins and leaves on the other,
/// a node's death included (its entries expire).
@Suite("Presence across a cluster")
struct PresenceClusterTests {
    static func list(_ http: TestHTTP, _ topic: String) async throws -> [String] {
        PresenceTests.clientIDs(try await http.get("/api/topics/\(topic)/presence").json["presence"])
    }

    @Test func listAndDiffsAcrossNodes() async throws {
        let cluster = try await TestCluster(nodes: 2)
        defer { cluster.stop() }
        #expect(try await cluster.http(0).post("/api/topics", json: ["name": "room"]).status == 201)
        let (watcher, watcherID) = try await PresenceTests.connectedID(cluster.port(0))
        try await subscribe(watcher, "room", extra: ["presence": true])
        #expect(PresenceTests.clientIDs(try await watcher.next(type: "presence", timeout: 30)["joins"]) == [watcherID])

        let (remote, remoteID) = try await PresenceTests.connectedID(cluster.port(1))
        #expect(remoteID != watcherID)
        try await subscribe(remote, "room")
        let joined = try await watcher.next(type: "presence", timeout: 30)
        #expect(PresenceTests.clientIDs(joined["joins"]) == [remoteID] && PresenceTests.clientIDs(joined["leaves"]).isEmpty)
        // Joined before its ack: either node lists it at once.
        for node in 0..<2 { #expect(try await Self.list(cluster.http(node), "room") == [watcherID, remoteID]) }
        #expect(try await cluster.http(1).get("/api/topics/nope/presence").status == 404)

        try await remote.send(json: ["type": "unsubscribe", "topic": "room"])
        _ = try await remote.next(type: "ack")
        #expect(PresenceTests.clientIDs(try await watcher.next(type: "presence", timeout: 30)["leaves"]) == [remoteID])
        #expect(try await Self.list(cluster.http(1), "room") == [watcherID])

        // A node that dies says nothing: its entries expire, and the watcher hears they left.
        try await subscribe(remote, "room")
        #expect(PresenceTests.clientIDs(try await watcher.next(type: "presence", timeout: 30)["joins"]) == [remoteID])
        cluster.nodes[1].signal(SIGKILL)
        let expired = try await watcher.next(type: "presence", timeout: 30)
        #expect(PresenceTests.clientIDs(expired["leaves"]) == [remoteID] && PresenceTests.clientIDs(expired["joins"]).isEmpty)
        #expect(try await Self.list(cluster.http(0), "room") == [watcherID])
        await watcher.close()
    }
}
