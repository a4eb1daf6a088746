import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOWebSocket
import PubSubProtocol

/// Each accepted TCP connection: plain HTTP/1.1 for the REST API (Hummingbird's responder), or
/// a WebSocket upgrade at `/ws` (native) or `/ws/websocket` (Phoenix), after which the connection is served by a ``WebSocketSession``
/// running directly on the channel's event loop (no async writer, no task per message).
struct PubSubChannel: ServerChildChannel, HTTPChannelHandler {
    enum Negotiated: Sendable {
        case http(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
        case webSocket(any Channel)
        case refusedUpgrade(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
    }

    struct Value: ServerChildChannelValue {
        let negotiated: EventLoopFuture<Negotiated>
        let channel: any Channel
    }

    /// The wire a WebSocket upgrade request asks for: `/ws` (native) or `/ws/websocket?vsn=…`
    /// (Phoenix), with permessage-deflate if offered, allowed and supported by that wire.
    static func wire(for head: HTTPRequestHead, deflateAllowed: Bool) -> (wire: any SessionWire, extensions: String?)? {
        let uri = head.uri
        let parts = uri.split(separator: "?", maxSplits: 1)
        let path = parts.first.map(String.init) ?? uri
        let offers = head.headers["Sec-WebSocket-Extensions"].joined(separator: ",")
        let deflate = deflateAllowed ? PerMessageDeflate.negotiate(offers: offers.isEmpty ? nil : offers) : nil
        switch path {
        case "/ws", "/ws/":
            return (NativeWire(deflate: deflate != nil), deflate)
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

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let state = self.state
            let upgradeAttempted = NIOLoopBoundBox(false, eventLoop: channel.eventLoop)
            let upgrader = NIOTypedWebSocketServerUpgrader<Negotiated>(
                // No NIO frame-error handler: the session parses frames (its decoder is removed
                // below) and runs its own close handshake on protocol errors.
                enableAutomaticErrorHandling: false,
                shouldUpgrade: { channel, head in
                    upgradeAttempted.value = true
                    guard let negotiated = Self.wire(for: head, deflateAllowed: state.configuration.permessageDeflate) else {
                        return channel.eventLoop.makeSucceededFuture(nil)
                    }
                    var headers = HTTPHeaders()
                    if let extensions = negotiated.extensions { headers.add(name: "Sec-WebSocket-Extensions", value: extensions) }
                    return channel.eventLoop.makeSucceededFuture(headers)
                },
                upgradePipelineHandler: { channel, head in
                    channel.eventLoop.makeCompletedFuture {
                        guard let wire = Self.wire(for: head, deflateAllowed: state.configuration.permessageDeflate)?.wire else {
                            throw ChannelError.inappropriateOperationForState
                        }
                        // The session parses frames itself (WebSocketReader), so NIO's decoder
                        // goes; its encoder stays but never sees a write (RawFrameWriter sits
                        // next to the socket and the session writes pre-framed bytes).
                        let sync = channel.pipeline.syncOperations
                        sync.removeHandler(try sync.handler(type: ByteToMessageHandler<WebSocketFrameDecoder>.self), promise: nil)
                        let writer = RawFrameWriter()
                        try sync.addHandler(writer, position: .first)
                        try sync.addHandler(WebSocketSession(state: state, wire: wire, writer: writer, logger: logger))
                        return Negotiated.webSocket(channel)
                    }
                }
            )
            let upgradeConfiguration = NIOTypedHTTPServerUpgradeConfiguration<Negotiated>(
                upgraders: [upgrader],
                notUpgradingCompletionHandler: { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
                        try channel.pipeline.syncOperations.addHandler(HTTPConnectionStateHandler(idleTimeout: nil, logger: logger))
                        let http = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                            wrappingChannelSynchronously: channel,
                            configuration: .init(isOutboundHalfClosureEnabled: true)
                        )
                        return upgradeAttempted.value ? .refusedUpgrade(http) : .http(http)
                    }
                }
            )
            var pipeline = NIOUpgradableHTTPServerPipelineConfiguration(upgradeConfiguration: upgradeConfiguration)
            pipeline.enablePipelining = false
            pipeline.enableErrorHandling = false
            pipeline.enableResponseHeaderValidation = false
            let negotiated = try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(configuration: pipeline)
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
            case .refusedUpgrade(let http):
                try await http.executeThenClose { _, outbound in
                    try await outbound.write(.head(HTTPResponse(status: .notFound, headerFields: [.connection: "close", .contentLength: "0"])))
                    try await outbound.write(.end(nil))
                }
            }
        } catch {
            logger.debug("connection ended", metadata: ["error": "\(error)"])
        }
    }
}
