import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

@testable import RedisClient
import RedisTestSupport

/// Against a real redis-server.
/// Connects in these tests may take longer than the client's default second: under
/// ThreadSanitizer, with the whole suite running on two cores, two did.
let testConnectTimeout = TimeAmount.seconds(10)

@Suite("Redis connection")
struct RedisConnectionTests {
    let group = MultiThreadedEventLoopGroup.singleton

    @Test func commandsAndErrorReplies() async throws {
        let server = try await RedisServer()
        defer { server.stop() }
        let connection = try await RedisConnection.connect(to: RedisURL(server.url), on: group, timeout: testConnectTimeout).get()
        #expect(try await connection.send(["PING"]).get() == .simpleString("PONG"))
        #expect(try await connection.send(["SET", "k", .bytes(ByteBuffer(string: "v\r\n\0"))]).get() == .simpleString("OK"))
        #expect(try await connection.send(["GET", "k"]).get() == .bulkString(ByteBuffer(string: "v\r\n\0")))
        #expect(try await connection.send(["GET", "missing"]).get() == .bulkString(nil))
        #expect(try await connection.send(["INCRBY", "n", .integer(5)]).get() == .integer(5))
        // An error reply is a value, and the connection goes on.
        guard case .error(let message) = try await connection.send(["NOSUCHCOMMAND"]).get() else {
            Issue.record("expected an error reply")
            return
        }
        #expect(message.hasPrefix("ERR"))
        await #expect(throws: RESPError.self) { try await connection.command(["NOSUCHCOMMAND"]).get() }
        #expect(try await connection.send(["RPUSH", "l", "a", "b"]).get() == .integer(2))
        #expect(try await connection.send(["LRANGE", "l", "0", "-1"]).get() == .array([.bulkString(ByteBuffer(string: "a")), .bulkString(ByteBuffer(string: "b"))]))
        try await connection.close().get()
    }

    /// Many commands written before any answer: each future gets its own answer, in order.
    @Test func pipelining() async throws {
        let server = try await RedisServer()
        defer { server.stop() }
        let connection = try await RedisConnection.connect(to: RedisURL(server.url), on: group, timeout: testConnectTimeout).get()
        let futures = (1...2_000).map { _ in connection.send(["INCR", "counter"]) }
        var answers: [Int64] = []
        for future in futures { answers.append(try await future.get().int ?? -1) }
        #expect(answers == Array(1...2_000))
        try await connection.close().get()
    }

    @Test func loginAndDatabaseFromTheURL() async throws {
        let server = try await RedisServer(arguments: ["--requirepass", "s3cret"])
        defer { server.stop() }
        let url = try RedisURL("redis://:s3cret@127.0.0.1:\(server.port)/2")
        let connection = try await RedisConnection.connect(to: url, on: group, timeout: testConnectTimeout).get()
        _ = try await connection.command(["SET", "where", "db2"]).get()
        let other = try await RedisConnection.connect(to: RedisURL("redis://:s3cret@127.0.0.1:\(server.port)/0"), on: group, timeout: testConnectTimeout).get()
        #expect(try await other.send(["GET", "where"]).get() == .bulkString(nil), "database 0 does not see database 2's key")
        // A wrong password fails the connect, with the server's message.
        await #expect(throws: RESPError.self) {
            _ = try await RedisConnection.connect(to: RedisURL("redis://:wrong@127.0.0.1:\(server.port)"), on: group, timeout: testConnectTimeout).get()
        }
        try await connection.close().get()
        try await other.close().get()
    }

    /// A server that goes away fails what was waiting, and later commands, at once.
    @Test func aClosedConnectionFailsItsCommands() async throws {
        let server = try await RedisServer()
        let connection = try await RedisConnection.connect(to: RedisURL(server.url), on: group, timeout: testConnectTimeout).get()
        let blocked = connection.send(["BLPOP", "nothing", "0"])
        server.stop()
        await #expect(throws: RESPError.connectionClosed) { try await blocked.get() }
        try await connection.closeFuture.get()
        await #expect(throws: (any Error).self) { try await connection.send(["PING"]).get() }
        // Nothing listens any more: connecting fails within the timeout.
        await #expect(throws: (any Error).self) {
            _ = try await RedisConnection.connect(to: RedisURL(server.url), on: group, timeout: .milliseconds(500)).get()
        }
    }
}

@Suite("Redis scripts")
struct RedisScriptTests {
    @Test func loadedOnceAndAgainAfterAFlush() async throws {
        let server = try await RedisServer()
        defer { server.stop() }
        let connection = try await RedisConnection.connect(to: RedisURL(server.url), on: MultiThreadedEventLoopGroup.singleton, timeout: testConnectTimeout).get()
        let script = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        #expect(try await connection.run(script, keys: ["c"], arguments: [.integer(2)]).get() == .integer(2))
        #expect(script.loadedSHA?.count == 40)
        #expect(try await connection.run(script, keys: ["c"], arguments: [.integer(3)]).get() == .integer(5))
        // The server forgets it: NOSCRIPT, loaded again, and the call still happens once.
        _ = try await connection.command(["SCRIPT", "FLUSH"]).get()
        #expect(try await connection.run(script, keys: ["c"], arguments: [.integer(1)]).get() == .integer(6))
        // A script error is a failure, with Redis's message.
        let broken = RedisScript("return redis.call('NOSUCHCOMMAND')")
        await #expect(throws: RESPError.self) { try await connection.run(broken, keys: [], arguments: []).get() }
        try await connection.close().get()
    }
}

@Suite("Redis pub/sub connection")
struct RedisSubscriptionTests {
    /// Messages published by another connection arrive in order, for the channels subscribed,
    /// and stop once unsubscribed.
    @Test func messagesInOrderUntilUnsubscribed() async throws {
        let server = try await RedisServer()
        defer { server.stop() }
        let group = MultiThreadedEventLoopGroup.singleton
        let received = NIOLockedValueBox<[String]>([])
        let subscriber = try await RedisSubscriptionConnection.connect(to: RedisURL(server.url), on: group, timeout: testConnectTimeout) { channel, payload in
            received.withLockedValue { $0.append("\(String(buffer: channel)):\(String(buffer: payload))") }
        }.get()
        try await subscriber.subscribe(["a", "b"]).get()
        let publisher = try await RedisConnection.connect(to: RedisURL(server.url), on: group, timeout: testConnectTimeout).get()
        for n in 1...100 {
            #expect(try await publisher.command(["PUBLISH", n % 2 == 0 ? "a" : "b", .integer(Int64(n))]).get() == .integer(1))
        }
        _ = try await publisher.command(["PUBLISH", "c", "not subscribed"]).get()
        try await subscriber.ping().get()  // answered after every message before it
        #expect(received.withLockedValue { $0 } == (1...100).map { "\($0 % 2 == 0 ? "a" : "b"):\($0)" })
        try await subscriber.unsubscribe(["a"]).get()
        _ = try await publisher.command(["PUBLISH", "a", "after"]).get()
        _ = try await publisher.command(["PUBLISH", "b", "still"]).get()
        try await subscriber.ping().get()
        #expect(received.withLockedValue { $0 }.suffix(1) == ["b:still"])
        #expect(!received.withLockedValue { $0 }.contains("a:after"))
        try await subscriber.close().get()
        try await publisher.close().get()
    }

    @Test func aServerGoneFailsTheWaitingAndCloses() async throws {
        let server = try await RedisServer(arguments: ["--requirepass", "pw"])
        let url = try RedisURL("redis://:pw@127.0.0.1:\(server.port)/1")
        let subscriber = try await RedisSubscriptionConnection.connect(to: url, on: MultiThreadedEventLoopGroup.singleton, timeout: testConnectTimeout) { _, _ in }.get()
        try await subscriber.subscribe(["x"]).get()
        server.stop()
        try await subscriber.closeFuture.get()
        await #expect(throws: (any Error).self) { try await subscriber.subscribe(["y"]).get() }
    }
}
