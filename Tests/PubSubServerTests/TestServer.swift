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
    var logger = Logger(label: "pubsub-test")
    logger.logLevel = .warning
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
