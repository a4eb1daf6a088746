import Foundation
import Logging
import PubSubCore
@testable import PubSubServer
import ServiceLifecycle
import Testing

/// SPEC 8's operator side: `/metrics` read by Prometheus's own parser, delivery latency per
/// topic in `/api/stats` and `GET /api/topics/{name}`, and the log lines with their context,
/// as text and as JSON.
@Suite("Metrics, latency and logs")
struct ObservabilityTests {
    /// Two subscribers and a few publishes spread over time (a topic samples at most one
    /// publication a millisecond), read back as deliveries.
    static func publishToTwoSubscribers(_ port: Int, _ http: TestHTTP, topic: String, count: Int) async throws -> [TestWebSocket] {
        _ = try await http.post("/api/topics", json: ["name": topic])
        let clients = [try await connect(port), try await connect(port)]
        for client in clients { try await subscribe(client, topic) }
        for n in 1...count {
            #expect(try await http.post("/api/topics/\(topic)/messages", json: ["message": ["n": n]]).status == 200)
            try await Task.sleep(for: .milliseconds(3))
        }
        for client in clients {
            for _ in 1...count { _ = try await client.next(type: "event") }
        }
        return clients
    }

    @Test func metricsParseAsPrometheusText() async throws {
        try await withServer { port, http in
            let clients = try await Self.publishToTwoSubscribers(port, http, topic: "orders.eu", count: 5)
            _ = try await http.get("/api/topics/nope")
            let (status, output) = try await PythonScript.run("Tests/Observability/parse_metrics.py", ["http://127.0.0.1:\(port)/metrics"], timeout: 60)
            #expect(status == 0, "\(output)")
            let parsed = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any] ?? [:]
            #expect((parsed["content_type"] as? String)?.hasPrefix("text/plain; version=0.0.4") == true)
            let families = parsed["families"] as? [String: [String: Any]] ?? [:]
            func samples(_ name: String) -> [[Any]] { families[name]?["samples"] as? [[Any]] ?? [] }
            func value(_ name: String, _ sample: String? = nil) -> Double? {
                samples(name).first { $0[0] as? String == (sample ?? name) }?[2] as? Double
            }
            // The parser names counter families without `_total`.
            let expected: [(String, String)] = [
                ("pubsub_connections", "gauge"), ("pubsub_subscriptions", "gauge"), ("pubsub_topics", "gauge"),
                ("pubsub_messages_published", "counter"), ("pubsub_messages_delivered", "counter"),
                ("pubsub_messages_dropped", "counter"), ("pubsub_delivery_latency_seconds", "histogram"),
                ("pubsub_http_requests", "counter"), ("process_resident_memory_bytes", "gauge"),
                ("process_cpu_seconds", "counter"), ("process_open_fds", "gauge"),
            ]
            for (name, type) in expected {
                #expect(families[name]?["type"] as? String == type, "\(name): \(String(describing: families[name]))")
            }
            #expect(value("pubsub_connections") == 2)
            #expect(value("pubsub_subscriptions") == 2)
            #expect(value("pubsub_topics") == 1)
            #expect(value("pubsub_messages_published", "pubsub_messages_published_total") == 5)
            #expect(value("pubsub_messages_delivered", "pubsub_messages_delivered_total") == 10)
            #expect(value("pubsub_messages_dropped", "pubsub_messages_dropped_total") == 0)
            let timed = value("pubsub_delivery_latency_seconds", "pubsub_delivery_latency_seconds_count") ?? 0
            #expect(timed >= 1 && timed <= 10, "sampled deliveries: \(timed)")
            #expect((value("process_resident_memory_bytes") ?? 0) > 1_000_000)
            #expect((value("process_open_fds") ?? 0) > 3)
            // Requests by route pattern, never by the topic in the path.
            let requests = samples("pubsub_http_requests").compactMap { $0[1] as? [String: String] }
            #expect(requests.contains { $0 == ["method": "POST", "route": "/api/topics/{name}/messages", "status": "200"] })
            #expect(requests.contains { $0 == ["method": "GET", "route": "/api/topics/{name}", "status": "404"] })
            // No label anywhere names a topic.
            for family in families.values {
                for sample in family["samples"] as? [[Any]] ?? [] {
                    let labels = sample[1] as? [String: String] ?? [:]
                    #expect(!labels.values.contains { $0.contains("orders") }, "\(sample)")
                    #expect(labels["topic"] == nil)
                }
            }
            for client in clients { await client.close() }
        }
    }

    /// `latency_ms` in the topic and in the stats: null before anything was delivered, then
    /// ordered percentiles of the sampled deliveries.
    @Test func deliveryLatencyPerTopic() async throws {
        try await withServer { port, http in
            _ = try await http.post("/api/topics", json: ["name": "quiet"])
            let quiet = try await http.get("/api/topics/quiet")
            let none = quiet.json["latency_ms"] as? [String: Any]
            #expect(none?["samples"] as? Int == 0)
            #expect(none?["p50"] is NSNull && none?["max"] is NSNull)

            let clients = try await Self.publishToTwoSubscribers(port, http, topic: "busy", count: 8)
            let topic = try await http.get("/api/topics/busy").json
            let latency = topic["latency_ms"] as? [String: Any] ?? [:]
            let samples = latency["samples"] as? Int ?? 0
            #expect(samples >= 1 && samples <= 16, "\(latency)")
            let p50 = latency["p50"] as? Double ?? -1
            let p90 = latency["p90"] as? Double ?? -1
            let p99 = latency["p99"] as? Double ?? -1
            let max = latency["max"] as? Double ?? -1
            #expect(p50 > 0 && p50 <= p90 && p90 <= p99 && p99 <= max, "\(latency)")
            #expect(max < 10_000, "milliseconds, and a delivery on loopback takes far less than 10 s: \(latency)")

            let stats = try await http.get("/api/stats").json
            let details = (stats["topics"] as? [String: Any])?["details"] as? [[String: Any]] ?? []
            let busy = details.first { $0["name"] as? String == "busy" }?["latency_ms"] as? [String: Any]
            #expect((busy?["samples"] as? Int ?? 0) >= samples)
            #expect(details.first { $0["name"] as? String == "quiet" }?["latency_ms"] != nil)
            for client in clients { await client.close() }
        }
    }

    /// A connection's first and last log lines carry who it is, from where, over what, and
    /// why it ended.
    @Test func connectionLogLines() async throws {
        let logs = LogCapture()
        try await TestLogs.$capture.withValue(logs) {
            try await withServer { port, _ in
                let ws = try await connect(port)
                try await ws.sendClose(code: 1000)
                _ = try? await ws.nextFrame(timeout: 5)  // the server's answering close
                await ws.close()
                let dropped = try await connect(port)
                await dropped.close()
                let opened = try await logs.lines("connection opened")
                #expect(opened.count == 2)
                let context = opened.first?.metadata ?? [:]
                #expect(context["client_id"]?.hasPrefix("c-") == true)
                #expect(context["remote"]?.hasPrefix("127.0.0.1:") == true)
                #expect(context["protocol"] == "native")
                let closed = try await logs.lines("connection closed")
                #expect(closed.first?.metadata["client_id"] == context["client_id"])
                #expect(closed.first?.metadata["reason"] == "client closed (1000)")
                #expect(closed.first?.metadata["duration_s"].flatMap(Double.init) != nil)
                // A TCP connection that ends with no close frame.
                let deadline = Date().addingTimeInterval(10)
                while logs.lines.filter({ $0.message == "connection closed" }).count < 2 && Date() < deadline {
                    try await Task.sleep(for: .milliseconds(20))
                }
                #expect(logs.lines.filter { $0.message == "connection closed" }.last?.metadata["reason"] == "connection lost")
            }
        }
    }

    /// Readiness drops once a graceful shutdown begins, while connections still drain: the
    /// watcher the server runs beside its application sets the flag `/api/ready` reads.
    @Test func notReadyWhileShuttingDown() async throws {
        try await withServer { _, http, server in
            #expect(try await http.get("/api/ready").status == 200)
            let group = ServiceGroup(
                configuration: .init(services: [PubSubApplication.ShutdownWatcher(state: server.state)], logger: Logger(label: "test"))
            )
            let running = Task { try await group.run() }
            await group.triggerGracefulShutdown()
            try await running.value
            let ready = try await http.get("/api/ready")
            #expect(ready.status == 503)
            #expect(ready.json["status"] as? String == "shutting_down")
            #expect(try await http.get("/api/health").status == 200, "still alive while it drains")
        }
    }

    /// `--log-format json`: every line a JSON object with `ts`, `level` and `msg`, the context
    /// as members; the token's `sub` as `user`, never the token.
    @Test func jsonLogFormat() async throws {
        let secret = AuthTests.secret
        let server = try await ServerProcess(["--log-format", "json", "--auth", "token", "--jwt-secret", secret])
        defer { server.stop() }
        let token = try await AuthTests.token(sub: "dora", subscribe: [">"])
        let ws = try await connect(server.port, path: "/ws?token=\(token)")
        await ws.close()
        let deadline = Date().addingTimeInterval(15)
        while !server.stderr.contains("connection closed") && Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        let lines = server.stderr.split(separator: "\n")
        #expect(lines.count >= 3)
        var messages: [String: [String: Any]] = [:]
        for line in lines {
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object != nil, "not a JSON object: \(line)")
            guard let object else { continue }
            #expect(object["ts"] is String && object["level"] is String && object["msg"] is String, "\(line)")
            if let message = object["msg"] as? String { messages[message] = object }
        }
        let opened = messages["connection opened"]
        #expect(opened?["user"] as? String == "dora")
        #expect((opened?["client_id"] as? String)?.hasPrefix("c-") == true)
        #expect(opened?["level"] as? String == "info")
        #expect(messages["connection closed"]?["client_id"] as? String == opened?["client_id"] as? String)
        #expect(messages["pubsub listening"]?["port"] as? String == String(server.port))
        #expect(!server.stderr.contains(token.split(separator: ".")[2]))
        #expect(try await ServerProcess.run(["serve", "--log-format", "xml"]).status != 0)
    }
}
