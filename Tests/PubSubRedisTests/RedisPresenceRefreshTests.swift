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
        let broker = try await makeRedisEngine(server.url, prefix: prefix)
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
}
