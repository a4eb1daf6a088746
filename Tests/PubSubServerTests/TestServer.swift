import Foundation
import BrokerContract
import Logging
import NIOPosix
import NIOConcurrencyHelpers
import PubSubCore
@testable import PubSubServer
import ServiceLifecycle

/// Which engine `withServer` starts.
enum TestEngine {
    /// In this task, servers run the memory engine behind ``DeferredBroker``: every engine
    /// answer comes later, as a networked engine's does.
    @TaskLocal static var deferred = false
}

/// Runs the real server in-process on a free port for the duration of `body`.
@discardableResult
func withServer<T>(
    _ configure: (inout ServerConfiguration) -> Void = { _ in },
    _ body: (_ port: Int, _ http: TestHTTP) async throws -> T
) async throws -> T {
    try await withServer(configure) { port, http, _ in try await body(port, http) }
}

/// The same, with the server itself for tests that look inside it.
@discardableResult
func withServer<T>(
    _ configure: (inout ServerConfiguration) -> Void = { _ in },
    _ body: (_ port: Int, _ http: TestHTTP, _ server: PubSubApplication) async throws -> T
) async throws -> T {
    var configuration = ServerConfiguration()
    configuration.port = 0
    configuration.threads = 1
    configure(&configuration)
    var logger = TestLogs.capture.map { capture in Logger(label: "pubsub-test") { _ in CapturingLogHandler(capture: capture) } }
        ?? Logger(label: "pubsub-test")
    logger.logLevel = TestLogs.capture == nil ? .warning : .info
    let broker: (any Broker)? = TestEngine.deferred ? DeferredBroker(configuration.makeEngine(group: MultiThreadedEventLoopGroup.singleton)) : nil
    let server = try PubSubApplication(configuration: configuration, logger: logger, broker: broker)
    let (ports, portContinuation) = AsyncStream.makeStream(of: Int.self)
    let group = ServiceGroup(
        configuration: .init(
            services: [try server.makeApplication { port in portContinuation.yield(port) }],
            logger: logger
        )
    )
    let running = Task { try await group.run() }
    var iterator = ports.makeAsyncIterator()
    guard let port = await iterator.next() else { throw TestError("server did not start") }
    do {
        let result = try await body(port, TestHTTP(port: port), server)
        await group.triggerGracefulShutdown()
        try await running.value
        try await server.shutdown()
        return result
    } catch {
        await group.triggerGracefulShutdown()
        _ = try? await running.value
        try? await server.shutdown()
        throw error
    }
}

/// Connects a WebSocket client and reads its `connected` frame.
func connect(_ port: Int, path: String = "/ws", answerPings: Bool = true) async throws -> TestWebSocket {
    let ws = try await TestWebSocket.connect(port: port, path: path, answerPings: answerPings)
    let hello = try await ws.next()
    guard hello["msg"] as? String == "connected" else { throw TestError("expected connected, got \(hello)") }
    return ws
}

/// Subscribes and waits for the ack.
@discardableResult
func subscribe(_ ws: TestWebSocket, _ topic: String, extra: [String: Any] = [:]) async throws -> [String: Any] {
    var frame: [String: Any] = ["type": "subscribe", "topic": topic, "request_id": "sub-\(topic)"]
    frame.merge(extra) { $1 }
    try await ws.send(json: frame)
    return try await ws.next(type: "ack")
}

/// The log lines of the servers `withServer` starts in a task, for tests of what is logged.
///
///     let logs = LogCapture()
///     try await TestLogs.$capture.withValue(logs) { try await withServer { … } }
///     #expect(logs.lines.contains { $0.message == "connection opened" })
enum TestLogs {
    @TaskLocal static var capture: LogCapture?
}

final class LogCapture: Sendable {
    struct Line: Sendable {
        let level: Logger.Level
        let message: String
        let metadata: [String: String]
    }

    private let captured = NIOLockedValueBox<[Line]>([])
    var lines: [Line] { captured.withLockedValue { $0 } }
    func append(_ line: Line) { captured.withLockedValue { $0.append(line) } }

    /// The lines with `message`, polled for up to `timeout` seconds until there are some.
    func lines(_ message: String, timeout: Double = 10) async throws -> [Line] {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let found = lines.filter { $0.message == message }
            if !found.isEmpty || Date() >= deadline { return found }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}

struct CapturingLogHandler: LogHandler {
    let capture: LogCapture
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        capture.append(.init(level: event.level, message: event.message.description, metadata: merged.mapValues(\.description)))
    }
}
