import Foundation
import NIOConcurrencyHelpers
import NIOPosix
import PubSubCore
@testable import PubSubRedis
import RedisClient
import RedisTestSupport
import Testing

/// What the heartbeat costs Redis for the cluster-wide subscriber counts: a node sends the
/// counts that changed, and the others read them again only when they did.
@Suite("Redis cluster counts")
struct RedisClusterCountsTests {
    @Test func countsTravelWhenTheyChangeAndAreWrittenAgainWhenLost() async throws {
        let server = try await RedisServer()
        defer { server.stop() }
        let prefix = "counts\(UInt32.random(in: 0...UInt32.max))"
        let topics = 300
        let load = NIOLockedValueBox(Dictionary(uniqueKeysWithValues: (0..<topics).map { ("t\($0)", 2) }))
        // A node expiry of 30 s, not the tests' 1 s: under a sanitizer, with the whole suite on
        // two cores, a beat came late enough that the counts' key (it lives three node expiries)
        // lapsed, and the writer rightly wrote them all again in the quiet window.
        let writer = try await makeRedisEngine(server.url, prefix: prefix, nodeExpiry: 30) {
            NodeLoad(connections: 1, subscriberCounts: load.withLockedValue { $0 })
        }
        let reader = try await makeRedisEngine(server.url, prefix: prefix, nodeExpiry: 30)
        let redis = try await RedisConnection.connect(to: RedisURL(server.url), on: MultiThreadedEventLoopGroup.singleton, timeout: .seconds(10)).get()
        func seen() -> [String: Int] { reader.status().otherNodesSubscriberCounts ?? [:] }
        try await waitUntil("the reader has the writer's counts") { seen().count == topics && seen()["t0"] == 2 }

        // Quiet: the nodes beat on, and the counts are neither written nor read. Each beat is
        // one script (counted by Redis), which writes the node's line (one HSET), and one
        // HGETALL of the nodes hash. Writing the writer's counts would be 300 HSETs a beat, and
        // reading the other node's counts one HGETALL more a beat.
        func stats() async throws -> (beats: Int, hsets: Int, hgetalls: Int) {
            let calls = try await commandCalls(redis)
            return ((calls["evalsha"] ?? 0) + (calls["eval"] ?? 0), calls["hset"] ?? 0, calls["hgetall"] ?? 0)
        }
        let before = try await stats()
        var quiet = before
        try await waitUntil("ten beats") {
            quiet = try await stats()
            return quiet.beats - before.beats >= 10
        }
        let beats = quiet.beats - before.beats
        // (A beat's HGETALL can fall on the other side of the window from its script.)
        #expect(quiet.hsets - before.hsets <= beats, "\(quiet.hsets - before.hsets) HSETs in \(beats) quiet beats")
        #expect(quiet.hgetalls - before.hgetalls <= beats + 2, "\(quiet.hgetalls - before.hgetalls) HGETALLs in \(beats) quiet beats")

        // A change: one count moves, a topic goes, a topic comes.
        load.withLockedValue {
            $0["t1"] = 7
            $0["t2"] = nil
            $0["new"] = 1
        }
        try await waitUntil("the reader has the change") { seen()["t1"] == 7 && seen()["t2"] == nil && seen()["new"] == 1 }
        #expect(seen().count == topics)

        // Gone from Redis (expired while Redis was out of reach, or lost): written again in full,
        // so a node that reads them afresh has them all.
        let countsKey = "\(prefix):node:\(writer.status().nodeID):subs"
        _ = try await redis.command(["DEL", .string(countsKey)]).get()
        try await waitUntil("the counts written again") { try await redis.command(["HLEN", .string(countsKey)]).get().int == Int64(topics) }
        let latecomer = try await makeRedisEngine(server.url, prefix: prefix, nodeExpiry: 30)
        try await waitUntil("a new node has the counts") {
            let counts = latecomer.status().otherNodesSubscriberCounts ?? [:]
            return counts["t0"] == 2 && counts["t1"] == 7 && counts["new"] == 1 && counts.count == topics
        }

        // The writer gone: its counts leave the others' totals.
        await writer.shutdown()
        try await waitUntil("the writer's counts left") { seen().isEmpty }
        _ = try? await redis.close().get()
        await latecomer.shutdown()
        await reader.shutdown()
    }

    @Test func writerSendsChangesAndAFullWriteWhenItDoesNotKnow() {
        var writer = CountsWriter()
        let first = writer.next(["a": 1, "b": 2])
        #expect(first.full && first.pairs.count == 2)
        // Not known to be written (it failed): full again, under a new version.
        let retry = writer.next(["a": 1, "b": 2])
        #expect(retry.full && retry.version > first.version)
        writer.wrote(retry)
        let quiet = writer.next(["a": 1, "b": 2])
        #expect(!quiet.full && quiet.pairs.isEmpty && quiet.version == retry.version)
        writer.wrote(quiet)
        let changed = writer.next(["a": 3, "c": 1])
        #expect(!changed.full && changed.version > quiet.version)
        #expect(Dictionary(uniqueKeysWithValues: changed.pairs.map { ($0.topic, $0.count) }) == ["a": 3, "b": 0, "c": 1])
        writer.wrote(changed)
        // Nothing left is no key in Redis: after it, the write is a full one.
        let emptied = writer.next([:])
        writer.wrote(emptied)
        let again = writer.next(["d": 1])
        #expect(again.full && again.pairs.count == 1 && again.version > emptied.version)
        writer.forget()
        #expect(writer.next(["d": 1]).full)
    }

    @Test func readerReadsAgainOnlyANewVersionAndDropsNodesThatLeft() {
        var reader = CountsReader()
        #expect(reader.needsReading("n1", version: 1))
        reader.update(live: ["n1", "n2"], fresh: ["n1": (1, ["a": 1, "b": 2]), "n2": (nil, ["a": 5])])
        #expect(reader.totals == ["a": 6, "b": 2])
        #expect(!reader.needsReading("n1", version: 1))
        #expect(reader.needsReading("n1", version: 2))
        #expect(reader.needsReading("n2", version: nil), "a node that gives no version is read every time")
        reader.update(live: ["n2"], fresh: [:])
        #expect(reader.totals == ["a": 5])
    }
}
