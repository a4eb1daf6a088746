import Foundation
import Testing

/// Each way a client can make the server hold memory for it (SPEC 2.4 and 2.5), kept up for a
/// minute against the real server in a process of its own, whose resident memory is read
/// from /proc every second: it must stay within the queue bound, plus one frame, plus a fixed
/// margin, above what it was before the abuse began. `PUBSUB_ABUSE_SECONDS` shortens the
/// minute for a quick local run. `PUBSUB_ABUSE_MEMORY_CHECK=off` keeps the abuse and the
/// checks that the server lives and serves, but not the memory bound: for a sanitized server
/// (scripts/sanitizers.sh, thread), whose resident memory includes the sanitizer's own.
@Suite("Abuse keeps memory bounded")
struct AbuseMemoryTests {
    static let seconds = ProcessInfo.processInfo.environment["PUBSUB_ABUSE_SECONDS"].flatMap(Double.init) ?? 60
    static let checksMemory = ProcessInfo.processInfo.environment["PUBSUB_ABUSE_MEMORY_CHECK"] != "off"
    static let queueBytes = 1 << 20
    static let maxFrameBytes = 1 << 20
    /// Allocator and runtime slack: freed memory glibc keeps, thread caches, read buffers.
    static let margin = 24 << 20
    static let arguments = ["--max-queue-bytes", String(queueBytes), "--log-level", "notice"]

    /// Runs `abusers` against a fresh server for `seconds` and checks its peak resident memory.
    /// `stalled`: connections that each may hold a full queue at once.
    func measure(
        _ name: String, stalled: Int = 1, arguments: [String] = [],
        prepare: (TestHTTP) async throws -> Void = { _ in }, abusers: (Int) -> [Abuser]
    ) async throws {
        let server = try await ServerProcess(Self.arguments + arguments)
        defer { server.stop() }
        let http = TestHTTP(port: server.port)
        try await prepare(http)
        let baseline = try server.residentBytes()
        let clients = abusers(server.port)
        let reports = Task {
            await withTaskGroup(of: Abuser.Report.self) { group in
                for abuser in clients { group.addTask { await abuser.run(seconds: Self.seconds) } }
                return await group.reduce(into: [Abuser.Report]()) { $0.append($1) }
            }
        }
        var peak = baseline
        let deadline = Date().addingTimeInterval(Self.seconds)
        while Date() < deadline {
            try await Task.sleep(for: .seconds(1))
            peak = max(peak, try server.residentBytes())
            #expect(server.isRunning, "the server died")
        }
        let done = await reports.value
        let allowed = stalled * Self.queueBytes + Self.maxFrameBytes + Self.margin
        let mib = { (bytes: Int) in String(format: "%.1f MiB", Double(bytes) / 1_048_576) }
        print(
            "abuse \(name): \(Int(Self.seconds)) s, RSS \(mib(baseline)) before, peak \(mib(peak)) (+\(mib(peak - baseline))), "
                + "allowed +\(mib(allowed)); connections \(done.map(\.connections)), sent \(mib(done.map(\.bytesSent).reduce(0, +)))"
        )
        if Self.checksMemory {
            #expect(peak - baseline <= allowed, "\(name): grew by \(mib(peak - baseline)), allowed \(mib(allowed))")
        }
        // Still serving.
        #expect(try await http.get("/api/health").status == 200)
    }

    static let pad = String(repeating: "p", count: 100)

    /// Publishes with acks and never reads them.
    @Test func unreadAcks() async throws {
        try await measure("unread acks", prepare: { _ = try await $0.post("/api/topics", json: ["name": "acks"]) }) { port in
            let publish = #"{"type":"publish","topic":"acks","message":{"pad":"\#(Self.pad)"},"request_id":"r-12345678"}"#
            return [Abuser(port: port, payload: Abuser.frames(Array(repeating: publish, count: 64)))]
        }
    }

    /// JSON pings without reading the pongs.
    @Test func unreadPongs() async throws {
        try await measure("unread pongs") { port in
            [Abuser(port: port, payload: Abuser.frames(Array(repeating: #"{"type":"ping","request_id":"\#(Self.pad)"}"#, count: 64)))]
        }
    }

    /// WebSocket pings without reading the pongs.
    @Test func unreadWebSocketPongs() async throws {
        try await measure("unread WebSocket pongs") { port in
            [Abuser(port: port, payload: Abuser.frames(Array(repeating: String(repeating: "w", count: 125), count: 64), opcode: 0x9))]
        }
    }

    /// Subscribes with a replay of large retained messages and unsubscribes, over and over,
    /// without reading: each round queues the replay again.
    @Test func replayLoop() async throws {
        let big = String(repeating: "r", count: 8_000)
        try await measure(
            "replay loop",
            prepare: { http in
                _ = try await http.post("/api/topics", json: ["name": "retained"])
                for n in 1...100 { _ = try await http.post("/api/topics/retained/messages", json: ["message": ["n": n, "big": big]]) }
            }
        ) { port in
            let round = [#"{"type":"subscribe","topic":"retained","last_n":100}"#, #"{"type":"unsubscribe","topic":"retained"}"#]
            return [Abuser(port: port, payload: Abuser.frames(Array(repeating: round, count: 8).flatMap { $0 }))]
        }
    }

    /// A Phoenix client whose join_ref is a megabyte: refused, so nothing echoes it.
    @Test func phoenixHugeJoinRef() async throws {
        let ref = String(repeating: "j", count: 1_000_000)
        try await measure("Phoenix 1 MB join_ref") { port in
            [
                Abuser(
                    port: port, path: "/ws/websocket?vsn=2.0.0",
                    payload: Abuser.frames([#"["\#(ref)","1","pubsub","phx_join",{}]"#]), pause: .milliseconds(200)
                )
            ]
        }
    }

    /// A subscriber that never reads a busy topic (events, not replies: it is not closed).
    @Test func stalledSubscriber() async throws {
        let payload = String(repeating: "e", count: 1_000)
        try await measure("stalled subscriber", prepare: { _ = try await $0.post("/api/topics", json: ["name": "busy"]) }) { port in
            let publish = #"{"type":"publish","topic":"busy","message":{"e":"\#(payload)"},"ack":false}"#
            return [
                Abuser(port: port, setup: Abuser.frames([#"{"type":"subscribe","topic":"busy"}"#]), payload: []),
                Abuser(port: port, payload: Abuser.frames(Array(repeating: publish, count: 32))),
            ]
        }
    }
}
