import NIOCore
import NIOHTTP1
import PubSubAuth
import PubSubCore
import PubSubProtocol

/// Checks a WebSocket upgrade request's handshake headers before NIO's upgrader sees it
/// (SPEC 2.5): a missing, repeated or malformed `Sec-WebSocket-Key`, `Sec-WebSocket-Version`
/// or `Sec-WebSocket-Extensions` is refused with 400 and a JSON error rather than negotiated
/// with, guessed at, or dropped without an answer. A refused request goes on as a plain HTTP
/// request (its `Upgrade` header removed) and ``PubSubChannel`` answers it with `refusal`.
final class UpgradeRequestCheck: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart

    /// The client's extension offers, parsed, for the upgrade's negotiation.
    private(set) var offers: [WebSocketExtension] = []
    /// Why the upgrade is refused: set here for bad headers, or by the upgrader (unknown path,
    /// connection limits).
    var refusal: (any Error)?
    /// What the upgrade's credential allows (with `--auth token`), for the session.
    var grant: Grant?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(var head) = unwrapInboundIn(data), Self.asksForWebSocket(head.headers) else {
            context.fireChannelRead(data)
            return
        }
        do throws(PubSubError) {
            offers = try WebSocketHandshake.check(
                keys: head.headers["Sec-WebSocket-Key"], versions: head.headers["Sec-WebSocket-Version"],
                extensions: head.headers["Sec-WebSocket-Extensions"]
            )
        } catch {
            refusal = error
            head.headers.remove(name: "Upgrade")
        }
        context.fireChannelRead(wrapInboundOut(.head(head)))
    }

    /// `Upgrade: websocket` (any case, among other protocols), as NIO's upgrader reads it.
    static func asksForWebSocket(_ headers: HTTPHeaders) -> Bool {
        headers[canonicalForm: "Upgrade"].contains { $0.lowercased() == "websocket" }
    }
}
