import Foundation
import NIOPosix
import PubSubCore
import PubSubRedis
import RedisClient
import RedisTestSupport
import Testing

/// What a node's presence refresh costs Redis: each heartbeat moves its entries' expiry, and
/// writes the entries themselves again only when some went missing.
@Suite("Redis presence refresh")
struct RedisPresenceRefreshTests {
    @Test func heartbeatsMoveExpiriesAndRewriteOnlyWhatWentMissing() async throws {
        let server = try await RedisServer()
        defer { server.stop() }
        let prefix = "refresh\(UInt32.random(in: 0...UInt32.max))"
        // A node expiry of 30 s, not the tests' 1 s: a beat late under a sanitizer would let
        // entries expire and be written again, rightly, in the window that counts writes.
        let broker = try await makeRedisEngine(server.url, prefix: prefix, nodeExpiry: 30)
        _ = try await broker.createTopic("room").get()
        let entries = 200
        for n in 0..<entries {
            try await broker.joinPresence(topic: "room", entry: PresenceEntry(clientID: "c-\(n)", user: nil, joinedAtMillis: Int64(n))).get()
        }
        let redis = try await RedisConnection.connect(to: RedisURL(server.url), on: MultiThreadedEventLoopGroup.singleton, timeout: .seconds(10)).get()
        let entriesKey = "\(prefix):presence:room"
        let expiryKey = "\(prefix):presence-expiry:room"

        // Three refreshes, seen as the expiry of an entry moving.
        let writesBefore = try await commandCalls(redis)["hset"] ?? 0
        var expiry = try await redis.command(["ZSCORE", .string(expiryKey), "c-0"]).get().string
        var refreshes = 0
        try await waitUntil("three refreshes") {
            let now = try await redis.command(["ZSCORE", .string(expiryKey), "c-0"]).get().string
            if now != expiry {
                refreshes += 1
                expiry = now
            }
            return refreshes >= 3
        }
        // Writing the 200 entries again each time would be 600 and more; the heartbeat's own
        // line in the nodes hash is one a beat.
        let writes = (try await commandCalls(redis)["hset"] ?? 0) - writesBefore
        #expect(writes < entries / 2, "\(writes) HSETs over \(refreshes) refreshes of \(entries) entries")

        // Gone from Redis (as after entries expired while it was out of reach): written again.
        _ = try await redis.command(["DEL", .string(entriesKey), .string(expiryKey)]).get()
        try await waitUntil("the entries written again") {
            try await redis.command(["HLEN", .string(entriesKey)]).get().int == Int64(entries)
        }
        #expect(try await broker.presence(topic: "room").get().count == entries)
        #expect(try await redis.command(["ZCARD", .string(expiryKey)]).get().int == Int64(entries))
        _ = try? await redis.close().get()
        await broker.shutdown()
    }

    /// Many topics with a few entries each (a subscriber in each of many topics): one script
    /// call moves the expiries of many topics, and what each topic's answer says is done for
    /// that topic alone.
    @Test func manyTopicsAreRefreshedInBatches() async throws {
        let server = try await RedisServer()
        defer { server.stop() }
        let prefix = "batches\(UInt32.random(in: 0...UInt32.max))"
        // A node expiry of 30 s, not the tests' 1 s: a beat late under a sanitizer would let
        // entries expire and be written again, rightly, in the window that counts writes.
        let broker = try await makeRedisEngine(server.url, prefix: prefix, nodeExpiry: 30)
        let topics = 300
        for n in 0..<topics {
            _ = try await broker.createTopic("t\(n)").get()
            try await broker.joinPresence(topic: "t\(n)", entry: PresenceEntry(clientID: "c-\(n)", user: nil, joinedAtMillis: 1)).get()
        }
        let redis = try await RedisConnection.connect(to: RedisURL(server.url), on: MultiThreadedEventLoopGroup.singleton, timeout: .seconds(10)).get()
        func expiry(_ n: Int) async throws -> String? {
            try await redis.command(["ZSCORE", .string("\(prefix):presence-expiry:t\(n)"), .string("c-\(n)")]).get().string
        }

        func refreshes(_ count: Int) async throws {
            var last = try await expiry(0)
            var seen = 0
            try await waitUntil("\(count) refreshes") {
                let now = try await expiry(0)
                if now != last {
                    seen += 1
                    last = now
                }
                return seen >= count
            }
        }

        // Three refreshes of every topic: with a call per topic, 900 calls and more.
        let before = try await commandCalls(redis)
        try await refreshes(3)
        let after = try await commandCalls(redis)
        let calls = (after["evalsha"] ?? 0) + (after["eval"] ?? 0) - (before["evalsha"] ?? 0) - (before["eval"] ?? 0)
        #expect(calls < topics / 10, "\(calls) script calls over 3 refreshes of \(topics) topics")
        #expect(try await expiry(topics - 1) != nil)

        // One topic's entries lost: written again. Another topic gone: its entry is not written
        // into a topic of the same name made again.
        _ = try await redis.command(["DEL", .string("\(prefix):presence:t1"), .string("\(prefix):presence-expiry:t1")]).get()
        _ = try await broker.deleteTopic("t2").get()
        try await waitUntil("t1's entry written again") { try await expiry(1) != nil }
        _ = try await broker.createTopic("t2").get()
        try await refreshes(3)
        #expect(try await broker.presence(topic: "t2").get().isEmpty, "the gone topic's entry came back")
        #expect(try await broker.presence(topic: "t3").get().map(\.clientID) == ["c-3"])
        _ = try? await redis.close().get()
        await broker.shutdown()
    }
}
