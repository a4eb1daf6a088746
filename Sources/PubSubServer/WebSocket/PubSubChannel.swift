import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOSSL
import NIOWebSocket
import PubSubProtocol

/// Each accepted TCP connection: plain HTTP/1.1 for the REST API (Hummingbird's responder), or
/// a WebSocket upgrade at `/ws` (native) or `/ws/websocket` (Phoenix), after which the connection is served by a ``WebSocketSession``
/// running directly on the channel's event loop (no async writer, no task per message).
struct PubSubChannel: ServerChildChannel, HTTPChannelHandler {
    enum Negotiated: Sendable {
        case http(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
        case webSocket(any Channel)
        /// An upgrade request answered with an error instead: 400 for bad handshake headers,
        /// 404 for an unknown path, 503 over a connection limit.
        case refusedUpgrade(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, any Error)
    }

    struct Value: ServerChildChannelValue {
        let negotiated: EventLoopFuture<Negotiated>
        let channel: any Channel
    }

    /// The wire a WebSocket upgrade request asks for: `/ws` (native, batched with `batch=1`) or
    /// `/ws/websocket?vsn=…` (Phoenix), with permessage-deflate if offered, allowed and
    /// supported by that wire.
    /// `offers` are the client's extension offers, already checked by ``UpgradeRequestCheck``.
    static func wire(for head: HTTPRequestHead, offers: [WebSocketExtension], deflateAllowed: Bool) -> (wire: any SessionWire, extensions: String?)? {
        let uri = head.uri
        let parts = uri.split(separator: "?", maxSplits: 1)
        let path = parts.first.map(String.init) ?? uri
        let deflate = deflateAllowed ? PerMessageDeflate.negotiate(offers: offers) : nil
        switch path {
        case "/ws", "/ws/":
            // Batched connections decline compression (NativeWire); a bad value was refused.
            let batched = (try? BatchOption.requested(in: uri)) ?? false
            return (NativeWire(deflate: deflate != nil, batched: batched), batched ? nil : deflate)
        case "/ws/websocket", "/ws/websocket/":
            var vsn: String?
            if parts.count > 1 {
                for pair in parts[1].split(separator: "&") where pair.hasPrefix("vsn=") {
                    vsn = String(pair.dropFirst(4))
                }
            }
            guard let version = PhoenixVersion(vsn: vsn) else { return nil }
            let wire = PhoenixWire(version: version, deflate: deflate != nil)
            return (wire, wire.inflater == nil ? nil : deflate)
        default:
            return nil
        }
    }

    let responder: HTTPChannelHandler.Responder
    let state: ServerState

    /// Where the handlers that see the connection's plain bytes go: first, or right after the
    /// TLS handler (with `--tls-cert`), which must stay next to the socket.
    static func nextToTheSocket(_ sync: ChannelPipeline.SynchronousOperations) -> ChannelPipeline.SynchronousOperations.Position {
        if let tls = try? sync.context(handlerType: NIOSSLServerHandler.self) { return .after(tls.handler) }
        return .first
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let state = self.state
            let configuration = state.configuration
            // Event-loop bound: the upgrader's callbacks run on this channel's loop.
            let check = NIOLoopBound(UpgradeRequestCheck(), eventLoop: channel.eventLoop)
            let requestGuard = NIOLoopBound(
                HTTPRequestGuard(headTimeout: .nanoseconds(Int64(configuration.requestHeadTimeoutSeconds * 1e9))), eventLoop: channel.eventLoop
            )
            let upgrader = NIOTypedWebSocketServerUpgrader<Negotiated>(
                // No NIO frame-error handler: the session parses frames (its decoder is removed
                // below) and runs its own close handshake on protocol errors.
                enableAutomaticErrorHandling: false,
                shouldUpgrade: { channel, head in
                    guard let negotiated = Self.wire(for: head, offers: check.value.offers, deflateAllowed: configuration.permessageDeflate) else {
                        check.value.refusal = HTTPError(.notFound)
                        return channel.eventLoop.makeSucceededFuture(nil)
                    }
                    if let refusal = BatchOption.refusal(uri: head.uri) {
                        check.value.refusal = refusal
                        return channel.eventLoop.makeSucceededFuture(nil)
                    }
                    if let refusal = Credentials.originRefusal(head.headers, allowed: configuration.allowedOrigins) {
                        check.value.refusal = refusal
                        return channel.eventLoop.makeSucceededFuture(nil)
                    }
                    let extensions = negotiated.extensions
                    @Sendable func accept() -> HTTPHeaders? {
                        if let refusal = state.connectionLimits.reserve(for: channel) {
                            check.value.refusal = refusal
                            return nil
                        }
                        var headers = HTTPHeaders()
                        if let extensions { headers.add(name: "Sec-WebSocket-Extensions", value: extensions) }
                        return headers
                    }
                    guard let authenticator = state.authenticator else { return channel.eventLoop.makeSucceededFuture(accept()) }
                    // Checked before the upgrade: a missing, bad or expired token gets 401.
                    guard let credential = Credentials.fromUpgrade(head) else {
                        check.value.refusal = Credentials.missing
                        return channel.eventLoop.makeSucceededFuture(nil)
                    }
                    return authenticator.grant(for: credential, on: channel.eventLoop).map { grant in
                        check.value.grant = grant
                        return accept()
                    }.flatMapErrorThrowing { error in
                        check.value.refusal = error
                        return nil
                    }
                },
                upgradePipelineHandler: { channel, head in
                    channel.eventLoop.makeCompletedFuture {
                        guard let wire = Self.wire(for: head, offers: check.value.offers, deflateAllowed: configuration.permessageDeflate)?.wire else {
                            throw ChannelError.inappropriateOperationForState
                        }
                        // The session parses frames itself (WebSocketReader), so NIO's decoder
                        // goes, and so do this server's HTTP handlers; NIO's encoder stays but
                        // never sees a write (RawFrameWriter sits next to the socket and the
                        // session writes pre-framed bytes).
                        let sync = channel.pipeline.syncOperations
                        sync.removeHandler(try sync.handler(type: ByteToMessageHandler<WebSocketFrameDecoder>.self), promise: nil)
                        sync.removeHandler(check.value, promise: nil)
                        sync.removeHandler(requestGuard.value.byteWatcher, promise: nil)
                        sync.removeHandler(requestGuard.value.partWatcher, promise: nil)
                        let writer = RawFrameWriter()
                        try sync.addHandler(writer, position: Self.nextToTheSocket(sync))
                        try sync.addHandler(
                            WebSocketSession(
                                state: state, wire: wire, writer: writer, eventLoop: channel.eventLoop, logger: logger, grant: check.value.grant
                            )
                        )
                        return Negotiated.webSocket(channel)
                    }
                }
            )
            let upgradeConfiguration = NIOTypedHTTPServerUpgradeConfiguration<Negotiated>(
                upgraders: [upgrader],
                notUpgradingCompletionHandler: { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let sync = channel.pipeline.syncOperations
                        try sync.addHandler(HTTP1ToHTTPServerCodec(secure: configuration.tls != nil))
                        let idleTimeout = Duration.nanoseconds(Int64(configuration.httpIdleTimeoutSeconds * 1e9))
                        try sync.addHandler(HTTPConnectionStateHandler(idleTimeout: idleTimeout, logger: logger))
                        let http = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                            wrappingChannelSynchronously: channel,
                            configuration: .init(isOutboundHalfClosureEnabled: true)
                        )
                        return check.value.refusal.map { .refusedUpgrade(http, $0) } ?? .http(http)
                    }
                }
            )
            var pipeline = NIOUpgradableHTTPServerPipelineConfiguration(upgradeConfiguration: upgradeConfiguration)
            pipeline.enablePipelining = false
            pipeline.enableErrorHandling = false
            pipeline.enableResponseHeaderValidation = false
            let negotiated = try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(configuration: pipeline)
            // Between the HTTP decoder and the upgrade handler, which they see requests before.
            let sync = channel.pipeline.syncOperations
            let decoder = try sync.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try sync.addHandler(requestGuard.value.byteWatcher, position: Self.nextToTheSocket(sync))
            try sync.addHandler(check.value, position: .after(decoder))
            try sync.addHandler(requestGuard.value.partWatcher, position: .after(decoder))
            return Value(negotiated: negotiated, channel: channel)
        }
    }

    func handle(value: Value, logger: Logger) async {
        do {
            switch try await value.negotiated.get() {
            case .http(let http):
                await handleHTTP(asyncChannel: http, logger: logger)
            case .webSocket(let channel):
                // The session runs on the event loop; this task only keeps the connection
                // accounted for until it closes (graceful shutdown waits for it).
                try await channel.closeFuture.get()
            case .refusedUpgrade(let http, let refusal):
                var (status, headers, body) = ErrorMapping.json(for: refusal)
                headers[.connection] = "close"
                headers[.contentLength] = String(body.readableBytes)
                if status == .badRequest { headers[.secWebSocketVersion] = WebSocketHandshake.version }
                try await http.executeThenClose { _, outbound in
                    try await outbound.write(.head(HTTPResponse(status: status, headerFields: headers)))
                    try await outbound.write(.body(body))
                    try await outbound.write(.end(nil))
                }
            }
        } catch {
            logger.debug("connection ended", metadata: ["error": "\(error)"])
        }
    }
}
