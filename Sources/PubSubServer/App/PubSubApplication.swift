import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import NIOSSL
import Logging
import NIOCore
import NIOPosix
import PubSubAuth
import PubSubCore
import PubSubProtocol
import ServiceLifecycle

/// The server: the engine, this node's hub, REST routes and WebSocket sessions on one port.
///
///     let server = PubSubApplication(configuration: ServerConfiguration(), logger: logger)
///     try await server.run()   // until SIGINT/SIGTERM, then drains and returns
public struct PubSubApplication: Sendable {
    public let configuration: ServerConfiguration
    let state: ServerState
    let logger: Logger
    let eventLoopGroup: MultiThreadedEventLoopGroup

    /// `broker`: the engine; by default the one `configuration` asks for. Throws when the
    /// security settings cannot be used (a key that does not parse).
    public init(configuration: ServerConfiguration, logger: Logger, broker: (any Broker)? = nil) throws {
        let authenticator = try configuration.makeAuthenticator()
        self.configuration = configuration
        self.logger = logger
        let threads = configuration.threads > 0 ? configuration.threads : System.coreCount
        let eventLoopGroup = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        self.eventLoopGroup = eventLoopGroup
        let state = ServerState(
            configuration: configuration, broker: broker ?? configuration.makeEngine(group: eventLoopGroup, logger: logger),
            authenticator: authenticator
        )
        self.state = state
        state.broker.start { [weak state] in
            guard let state else { return NodeLoad(connections: 0, subscriberCounts: [:]) }
            return NodeLoad(connections: state.connectionsCurrent.load(ordering: .relaxed), subscriberCounts: state.hub.subscriberCounts())
        }
    }

    /// Builds the Hummingbird application; `onListening` gets the bound port (useful with port 0).
    public func makeApplication(onListening: @escaping @Sendable (Int) async -> Void = { _ in }) throws -> some ApplicationProtocol {
        let router = makeRouter()
        let state = self.state
        let plain = HTTPServerBuilder { responder in PubSubChannel(responder: responder, state: state) }
        // HTTPS and wss:// on the same port with --tls-cert/--tls-key.
        let server = try configuration.tls.map { try HTTPServerBuilder.tls(plain, tlsConfiguration: try $0.serverConfiguration()) } ?? plain
        return Application(
            router: router,
            server: server,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
            onServerRunning: { channel in await onListening(channel.localAddress?.port ?? 0) },
            eventLoopGroupProvider: .shared(eventLoopGroup),
            logger: logger
        )
    }

    /// Every HTTP route (the tests hold it against the OpenAPI document).
    func makeRouter() -> Router<PubSubRequestContext> {
        let router = Router(context: PubSubRequestContext.self)
        router.add(middleware: HTTPMetricsMiddleware(metrics: state.metrics))
        RESTRoutes(state: state).register(on: router)
        SSERoutes(state: state).register(on: router)
        MetricsRoutes(state: state).register(on: router)
        DashboardRoutes().register(on: router)
        return router
    }

    /// Runs until SIGINT or SIGTERM; then stops accepting, tells WebSocket clients
    /// `server_shutdown`, flushes their queues for up to the grace period and closes them with 1001.
    public func run(onListening: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let group = ServiceGroup(
            configuration: .init(
                // Listed last, so told first: readiness drops before the server stops accepting.
                services: [try makeApplication(onListening: onListening), ShutdownWatcher(state: state)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        try await group.run()
        try await shutdown()
    }

    /// Marks the server as shutting down (`/api/ready` answers 503) as soon as a graceful
    /// shutdown begins, while connections still drain.
    struct ShutdownWatcher: Service {
        let state: ServerState

        func run() async throws {
            try? await gracefulShutdown()
            state.shuttingDown.store(true, ordering: .relaxed)
        }
    }

    /// Stops the event-loop threads once the application has stopped.
    public func shutdown() async throws {
        // Hummingbird ends its graceful shutdown in a task of its own, which releases NIO's
        // `ServerQuiescingHelper` a moment after the application has returned; the helper's
        // deinit completes a promise on an event loop. Stopping the loops first made NIO print
        // "Cannot schedule tasks on an EventLoop that has already shut down" on some stops
        // (found with SWIFTNIO_STRICT=1, which turns it into a crash with a backtrace). That task
        // cannot be awaited from here, so it gets a moment to finish.
        try? await Task.sleep(for: .milliseconds(50))
        await state.broker.shutdown()
        try await eventLoopGroup.shutdownGracefully()
    }
}
