import Foundation
import NIOConcurrencyHelpers
import PubSubClient
import RedisTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The Swift client (SPEC 10) against the real server: surviving a restart and dropped
/// connections, and `pubsub pub` / `pubsub sub` through the binary.
@Suite("Swift client")
struct SwiftClientTests {
    /// Reconnects within tens of milliseconds, so the tests do not wait on the backoff.
    static var quick: PubSubClientConfiguration {
        var configuration = PubSubClientConfiguration()
        configuration.initialReconnectDelay = .milliseconds(50)
        configuration.maxReconnectDelay = .milliseconds(500)
        return configuration
    }

    /// What a subscription delivered so far, consumed by a task of its own.
    final class Seen: Sendable {
        let elements = NIOLockedValueBox<[SubscriptionElement]>([])
        let ended = NIOLockedValueBox<(any Error)?>(nil)

        var events: [PubSubEvent] {
            elements.withLockedValue { $0 }.compactMap { if case .event(let event) = $0 { event } else { nil } }
        }

        var gaps: [PubSubGap] {
            elements.withLockedValue { $0 }.compactMap { if case .gap(let gap) = $0 { gap } else { nil } }
        }

        /// Waits (30 s at most) until `condition` holds.
        func wait(_ what: String, until condition: (Seen) -> Bool) async throws {
            let deadline = Date().addingTimeInterval(30)
            while !condition(self) {
                guard Date() < deadline else {
                    throw TestError("\(what): not after 30 s; events \(events.map(\.seq)), gaps \(gaps), ended \(String(describing: ended.withLockedValue { $0 }))")
                }
                try await Task.sleep(for: .milliseconds(10))
            }
        }
    }

    static func consume(_ subscription: PubSubSubscription) -> (Seen, Task<Void, Never>) {
        let seen = Seen()
        let task = Task {
            do {
                for try await element in subscription { seen.elements.withLockedValue { $0.append(element) } }
            } catch {
                seen.ended.withLockedValue { $0 = error }
            }
        }
        return (seen, task)
    }

    static func number(_ event: PubSubEvent) -> Int? {
        try? event.payload.decode([String: Int].self)["n"]
    }

    @Test func survivesAServerRestartAndDeclaresTheNewEpoch() async throws {
        let first = try await ServerProcess(["--auto-create-topics", "true"])
        defer { first.stop() }
        let port = first.port
        let client = try PubSubClient(url: "ws://127.0.0.1:\(port)/ws", configuration: Self.quick)
        let (seen, consumer) = Self.consume(try await client.subscribe("restart"))
        for n in 1...3 { try await client.publish("restart", ["n": n]) }
        try await seen.wait("the first server's events") { $0.events.count == 3 }
        let oldEpoch = try #require(seen.events.first?.epoch)

        first.signal(SIGTERM)
        #expect(try await first.waitForExit(timeout: 30) == 0)
        let second = try await ServerProcess(["--auto-create-topics", "true", "--port", "\(port)"])
        defer { second.stop() }
        #expect(second.port == port)
        // Published on the new server before or after the client is back: replayed or live.
        let http = TestHTTP(port: port)
        for n in 4...5 {
            #expect(try await http.post("/api/topics/restart/messages", json: ["message": ["n": n]]).status == 200)
        }
        try await seen.wait("the gap and the new server's events") { $0.events.count == 5 }

        let elements = seen.elements.withLockedValue { $0 }
        #expect(seen.gaps.count == 1)
        let gap = try #require(seen.gaps.first)
        #expect(gap.topic == "restart")
        #expect(gap.previousEpoch == oldEpoch)
        #expect(gap.previousSeq == 3)
        #expect(gap.epoch != nil && gap.epoch != oldEpoch)
        #expect(gap.missing == nil)
        // The gap comes between the epochs; the new one starts again at 1.
        let gapIndex = try #require(elements.firstIndex { if case .gap = $0 { true } else { false } })
        #expect(gapIndex == 3)
        #expect(seen.events.map(\.seq) == [1, 2, 3, 1, 2])
        #expect(seen.events.map(Self.number) == [1, 2, 3, 4, 5])
        #expect(seen.events.suffix(2).allSatisfy { $0.epoch == gap.epoch })
        // Publishing goes on through the new connection.
        #expect(try await client.publish("restart", ["n": 6]).seq == 3)
        try await seen.wait("an event after the restart") { $0.events.count == 6 }
        consumer.cancel()
        await client.close()
    }

    @Test func survivesDroppedConnectionsWithEveryMessageOnceInOrder() async throws {
        try await withServer({ $0.historySize = 10_000 }) { port, http in
            #expect(try await http.post("/api/topics", json: ["name": "drops"]).status == 201)
            let proxy = try await TCPProxy(to: port)
            let subscriber = try PubSubClient(url: "ws://127.0.0.1:\(proxy.port)", configuration: Self.quick)
            let (seen, consumer) = Self.consume(try await subscriber.subscribe("drops"))
            let publisher = try PubSubClient(url: "ws://127.0.0.1:\(port)")
            let total = 600
            let publishing = Task {
                for n in 1...total {
                    try await publisher.publish("drops", ["n": n])
                    if n % 4 == 0 { try await Task.sleep(for: .milliseconds(5)) }
                }
            }
            // Cut the subscriber's socket three times while the publisher goes on, the link
            // down for a moment each time (reconnects are refused meanwhile).
            for cut in [100, 250, 400] {
                try await seen.wait("\(cut) events") { $0.events.count >= cut }
                proxy.cut()
                try await Task.sleep(for: .milliseconds(100))
                proxy.restore()
            }
            try await publishing.value
            try await seen.wait("all \(total) events") { $0.events.count >= total }
            #expect(seen.gaps.isEmpty)
            #expect(seen.events.map(\.seq) == Array(1...total))
            #expect(seen.events.map(Self.number) == Array(1...total))
            consumer.cancel()
            await subscriber.close()
            await publisher.close()
            await proxy.close()
        }
    }

    /// A consumer that does not keep up costs the client at most `maxPendingEvents` events: the
    /// rest are dropped, and a gap names them before the next event it gets.
    @Test func aConsumerThatFallsBehindGetsAGapNotUnboundedMemory() async throws {
        try await withServer { port, http in
            for name in ["bounded", "sentinel"] { #expect(try await http.post("/api/topics", json: ["name": name]).status == 201) }
            var configuration = PubSubClientConfiguration()
            configuration.maxPendingEvents = 50
            let client = try PubSubClient(url: "ws://127.0.0.1:\(port)", configuration: configuration)
            let bounded = try await client.subscribe("bounded")
            let (sentinel, sentinelConsumer) = Self.consume(try await client.subscribe("sentinel"))
            for n in 1...200 {
                #expect(try await http.post("/api/topics/bounded/messages", json: ["message": ["n": n]]).status == 200)
            }
            // The server writes a connection's events in the order they were published: once
            // the sentinel's is in, the client has had all 200.
            #expect(try await http.post("/api/topics/sentinel/messages", json: ["message": "after"]).status == 200)
            try await sentinel.wait("the sentinel's event") { $0.events.count == 1 }

            let (seen, consumer) = Self.consume(bounded)
            try await seen.wait("the 50 events that waited") { $0.events.count == 50 }
            for n in 201...210 {
                #expect(try await http.post("/api/topics/bounded/messages", json: ["message": ["n": n]]).status == 200)
            }
            try await seen.wait("the events after the gap") { $0.events.count == 60 }
            #expect(seen.events.map(\.seq) == Array(1...50) + Array(201...210))
            #expect(seen.events.map(Self.number) == Array(1...50) + Array(201...210))
            let epoch = try #require(seen.events.first?.epoch)
            #expect(seen.gaps == [PubSubGap(topic: "bounded", epoch: epoch, missing: 51...200)])
            let gapIndex = seen.elements.withLockedValue { $0 }.firstIndex { if case .gap = $0 { true } else { false } }
            #expect(gapIndex == 50)
            consumer.cancel()
            sentinelConsumer.cancel()
            await client.close()
        }
    }

    @Test func cancellingTheConsumerUnsubscribes() async throws {
        try await withServer { port, http in
            #expect(try await http.post("/api/topics", json: ["name": "cancel"]).status == 201)
            let client = try PubSubClient(url: "ws://127.0.0.1:\(port)")
            let (_, consumer) = Self.consume(try await client.subscribe("cancel"))
            #expect(try await http.get("/api/topics/cancel").json["subscriber_count"] as? Int == 1)
            consumer.cancel()
            let deadline = Date().addingTimeInterval(30)
            while try await http.get("/api/topics/cancel").json["subscriber_count"] as? Int != 0 {
                guard Date() < deadline else { throw TestError("still subscribed after the consumer was cancelled") }
                try await Task.sleep(for: .milliseconds(10))
            }
            // The connection stays: the client still publishes.
            #expect(try await client.publish("cancel", "still here").seq == 1)
            await #expect(throws: PubSubClientError.server(code: "TOPIC_NOT_FOUND", message: "topic 'nope' does not exist")) {
                _ = try await client.subscribe("nope")
            }
            #expect(try await client.publish("cancel", "fire and forget", ack: false) == nil)
            await client.close()
            await #expect(throws: PubSubClientError.closed) { try await client.publish("cancel", 1) }
        }
    }

    @Test func unreachableAndRefusedConnectionsFailTheFirstCall() async throws {
        let reserved = try ReservedPort()
        defer { reserved.close() }
        let client = try PubSubClient(url: "ws://127.0.0.1:\(reserved.port)")
        await #expect(throws: PubSubClientError.unreachable("connection refused")) { try await client.connect() }
        await #expect(throws: PubSubClientError.unreachable("connection refused")) { _ = try await client.subscribe("orders") }

        let server = try await ServerProcess(["--auth", "token", "--api-key", AuthTests.apiKey])
        defer { server.stop() }
        let anonymous = try PubSubClient(url: "http://127.0.0.1:\(server.port)")
        await #expect(throws: PubSubClientError.upgradeRefused) { try await anonymous.connect() }
        let authorized = try PubSubClient(url: "http://127.0.0.1:\(server.port)", token: AuthTests.apiKey)
        try await authorized.connect()
        await #expect(throws: PubSubClientError.server(code: "TOPIC_NOT_FOUND", message: "topic 'orders' does not exist")) {
            try await authorized.publish("orders", 1)
        }
        await authorized.close()
    }

    // MARK: - The CLI

    /// Starts `pubsub ARGUMENTS…` with `stdin` as its standard input.
    static func launch(_ arguments: [String], stdin: String? = nil) throws -> (Process, stdout: PipeCollector, stderr: PipeCollector) {
        let process = Process()
        process.executableURL = try ServerProcess.binary()
        process.arguments = arguments
        let stdout = PipeCollector()
        let stderr = PipeCollector()
        process.standardOutput = stdout.writer
        process.standardError = stderr.writer
        let input = ChildPipe.make()
        process.standardInput = stdin == nil ? FileHandle.nullDevice : input.read
        try process.run()
        stdout.childStarted()
        stderr.childStarted()
        try input.read.close()
        if let stdin { input.write.write(Data(stdin.utf8)) }
        try input.write.close()
        return (process, stdout, stderr)
    }

    static func run(_ arguments: [String], stdin: String? = nil) async throws -> (status: Int32, stdout: String, stderr: String) {
        let (process, stdout, stderr) = try launch(arguments, stdin: stdin)
        try await waitUntilExit(process, timeout: 60)
        return (process.terminationStatus, try await stdout.untilEnd(timeout: 10), try await stderr.untilEnd(timeout: 10))
    }

    static func lines(_ text: String) -> [[String: Any]] {
        text.split(separator: "\n").map { CLITests.json(String($0)) }
    }

    @Test func pubAndSubOverTLS() async throws {
        let files = try TLSTests.makeCertificate()
        defer { try? FileManager.default.removeItem(atPath: (files.certificatePath as NSString).deletingLastPathComponent) }
        try await withServer({
            $0.tls = .init(certificatePath: files.certificatePath, keyPath: files.keyPath)
            $0.autoCreateTopics = true
        }) { port, _ in
            // A name: swift-websocket sends the host as SNI, which cannot be an address.
            let url = ["--url", "https://localhost:\(port)"]
            var run = try await Self.run(["pub", "secure", "over tls", "--cacert", files.certificatePath] + url)
            #expect(run.status == 0, "\(run.stderr)")
            run = try await Self.run(["sub", "secure", "--last-n", "1", "--count", "1", "--cacert", files.certificatePath] + url)
            #expect(run.status == 0, "\(run.stderr)")
            #expect((Self.lines(run.stdout).first?["message"] as? [String: Any])?["payload"] as? String == "over tls")
            // Not in the system's trust store: refused before anything is sent.
            run = try await Self.run(["pub", "secure", "x"] + url)
            #expect(run.status == 3)
            #expect(run.stderr.contains("cannot reach https://localhost:\(port)") && run.stderr.contains("not trusted (pass its CA with --cacert)"), "\(run.stderr)")
            run = try await Self.run(["pub", "secure", "x", "--cacert", files.certificatePath, "--url", "https://127.0.0.1:\(port)"])
            #expect(run.status == 3)
            #expect(run.stderr.contains("needs the server's host name, not an IP address"), "\(run.stderr)")
        }
    }

    @Test func pubAndSubThroughTheBinary() async throws {
        let server = try await ServerProcess()
        defer { server.stop() }
        let url = ["--url", "http://127.0.0.1:\(server.port)"]
        #expect(try await ServerProcess.run(["topics", "create", "cli"] + url).status == 0)

        var run = try await Self.run(["pub", "cli", #"{"n":1}"#, "--json"] + url)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(CLITests.json(run.stdout)["seq"] as? Int == 1)
        run = try await Self.run(["pub", "cli", "-"] + url, stdin: "2\n\n\"three\"\nfour words\n")
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr == "published 3 messages to 'cli'\n")

        run = try await Self.run(["sub", "cli", "--last-n", "10", "--count", "4"] + url)
        #expect(run.status == 0, "\(run.stderr)")
        var lines = Self.lines(run.stdout)
        #expect(lines.map { $0["type"] as? String } == ["event", "event", "event", "event"])
        #expect(lines.map { $0["seq"] as? Int } == [1, 2, 3, 4])
        let payloads = lines.map { ($0["message"] as? [String: Any])?["payload"] }
        #expect((payloads[0] as? [String: Any])?["n"] as? Int == 1)
        #expect(payloads[1] as? Int == 2)
        #expect(payloads[2] as? String == "three")
        #expect(payloads[3] as? String == "four words")
        let epoch = try #require(lines.first?["epoch"] as? String)

        // Resumed after seq 2 of that epoch.
        run = try await Self.run(["sub", "cli", "--since", "2", "--epoch", epoch, "--count", "2"] + url)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(Self.lines(run.stdout).map { $0["seq"] as? Int } == [3, 4])
        #expect(run.stderr.isEmpty)

        // An epoch the topic does not have: the gap, on stdout and stderr, then what is retained.
        run = try await Self.run(["sub", "cli", "--since", "2", "--epoch", "stale", "--count", "4"] + url)
        #expect(run.status == 0, "\(run.stderr)")
        lines = Self.lines(run.stdout)
        #expect(lines.map { $0["type"] as? String } == ["gap", "event", "event", "event", "event"])
        #expect(lines.first?["previous_epoch"] as? String == "stale")
        #expect(lines.first?["previous_seq"] as? Int == 2)
        #expect(lines.first?["epoch"] as? String == epoch)
        #expect(lines.first?["from_seq"] == nil)
        #expect(Self.lines(run.stderr).first?["type"] as? String == "gap")

        // Live: a subscriber first, then a publish.
        let (live, liveOut, liveErr) = try Self.launch(["sub", "cli", "--count", "1"] + url)
        let http = TestHTTP(port: server.port)
        let deadline = Date().addingTimeInterval(30)
        while try await http.get("/api/topics/cli").json["subscriber_count"] as? Int != 1 {
            guard Date() < deadline else { throw TestError("sub never subscribed: \(liveErr.contents.text)") }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(try await Self.run(["pub", "cli", "5"] + url).status == 0)
        try await waitUntilExit(live, timeout: 30)
        #expect(live.terminationStatus == 0)
        #expect(Self.lines(try await liveOut.untilEnd(timeout: 10)).map { $0["seq"] as? Int } == [5])

        // SPEC 8's exit statuses.
        run = try await Self.run(["pub", "nope", "x"] + url)
        #expect(run.status == 1)
        #expect(run.stderr.contains("TOPIC_NOT_FOUND"), "\(run.stderr)")
        run = try await Self.run(["sub", "nope"] + url)
        #expect(run.status == 1)
        #expect(run.stderr.contains("TOPIC_NOT_FOUND"), "\(run.stderr)")
        run = try await Self.run(["pub", "cli", "-"] + url, stdin: "1\n" + String(repeating: "x", count: 70_000) + "\n3\n")
        #expect(run.status == 1)
        #expect(run.stderr.contains("line 2:") && run.stderr.contains("MESSAGE_TOO_LARGE") && run.stderr.contains("published 2 messages"), "\(run.stderr)")
        for usage in [["sub", "cli", "--last-n", "1", "--since", "1"], ["sub"], ["sub", "a", "b", "--since", "1"], ["pub", "cli"]] {
            run = try await Self.run(usage + url)
            #expect(run.status == 2, "\(usage): \(run.stderr)")
        }
        let reserved = try ReservedPort()
        defer { reserved.close() }
        run = try await Self.run(["pub", "cli", "x", "--url", "http://127.0.0.1:\(reserved.port)"])
        #expect(run.status == 3)
        #expect(run.stderr == "error: cannot reach http://127.0.0.1:\(reserved.port): connection refused\n", "\(run.stderr)")
    }
}
