import NIOCore
import PubSubCore
import PubSubProtocol

/// Wire-format slots of ``Publication/frames``: the broker encodes each publication once per
/// slot that has subscribers, in this order.
enum WireFormat {
    static let native = 0
    static let phoenixV1 = 1
    static let phoenixV2 = 2
    /// permessage-deflate variants: compressed once per publication, from the plain slot's
    /// frame when that format has subscribers too (so listed after it).
    static let nativeDeflate = 3
    static let phoenixV1Deflate = 4

    static let encoders: [any PublicationEncoder] = [
        NativeEventEncoder(), PhoenixEventEncoder(version: .v1), PhoenixEventEncoder(version: .v2),
        DeflatedEncoder(NativeEventEncoder(), reusing: native), DeflatedEncoder(PhoenixEventEncoder(version: .v1), reusing: phoenixV1),
    ]
}

/// How a ``WebSocketSession`` speaks to its client. Event-loop confined, one per connection.
protocol SessionWire: AnyObject {
    /// The slot of ``WireFormat`` whose frames this connection receives.
    var format: Int { get }
    /// Whether the server pings (native) or the client heartbeats (Phoenix).
    var sendsPings: Bool { get }
    /// Inflates compressed client messages when permessage-deflate was negotiated.
    var inflater: MessageInflater? { get }
    func greeting(clientID: String) -> ByteBuffer?
    /// Bytes this connection writes before each shared delivery body, inside the frame
    /// (Phoenix 2.0.0: `[join_ref,null,`); nil when deliveries are whole shared frames.
    var deliveryPrefix: ByteBuffer? { get }
    /// Handles one text frame: decode it; unless the decoder's scan saw only ASCII, check that it
    /// is UTF-8 (RFC 6455 8.1) and refuse it with `session.refuseInvalidUTF8()` if not; then
    /// `session.execute` or `session.reply`.
    func receive(text: ByteBuffer, session: WebSocketSession)
    /// A server-initiated message (topic deleted, drops, shutdown, slow consumer).
    func notice(_ message: ServerMessage) -> ByteBuffer
    /// An error that answers no particular request (undecodable or binary frames).
    func unaddressedError(_ error: PubSubError) -> ByteBuffer
}

/// The native JSON protocol at `/ws` (docs/protocol.md).
final class NativeWire: SessionWire {
    let format: Int
    let sendsPings = true
    let deliveryPrefix: ByteBuffer? = nil
    let inflater: MessageInflater?

    init(deflate: Bool) {
        format = deflate ? WireFormat.nativeDeflate : WireFormat.native
        inflater = deflate ? try? MessageInflater() : nil
    }

    func greeting(clientID: String) -> ByteBuffer? {
        NativeCodec.frame(.connected(clientID: clientID))
    }

    func receive(text: ByteBuffer, session: WebSocketSession) {
        var requestID: String?
        // Decoded first: a JSON object all of ASCII (as a publisher's frames are) needs no
        // UTF-8 check of its own; the decode's result waits for it.
        var isASCII = false
        let command = NativeCodec.decode(text, limits: session.decodingLimits, requestID: &requestID, isASCII: &isASCII)
        guard isASCII || UTF8Check.isValid(text) else { return session.refuseInvalidUTF8() }
        switch consume command {
        case .success(.publish(let topic, let message, let ack)):
            session.publish(topic: topic, message: message, ack: ack, requestID: requestID, encode: NativeCodec.append)
        case .success(let command):
            session.execute(command) { NativeCodec.append($0, requestID: requestID, to: &$1) }
        case .failure(let error):
            session.respond { NativeCodec.append(.error(error), requestID: requestID, to: &$0) }
        }
    }

    func notice(_ message: ServerMessage) -> ByteBuffer {
        NativeCodec.frame(message)
    }

    func unaddressedError(_ error: PubSubError) -> ByteBuffer {
        NativeCodec.frame(.error(error))
    }
}

/// Phoenix Channels at `/ws/websocket`: one channel, `pubsub`, whose events carry the native
/// commands; heartbeats on topic `phoenix` (docs/protocol.md, "Phoenix Channels").
final class PhoenixWire: SessionWire {
    let version: PhoenixVersion
    let format: Int
    let sendsPings = false
    private var joinRef: ByteBuffer? {
        didSet { if version == .v2 { deliveryPrefix = PhoenixEventEncoder.deliveryPrefix(joinRef: joinRef) } }
    }
    private(set) var deliveryPrefix: ByteBuffer?
    private var joined = false
    private var clientID = ""

    let inflater: MessageInflater?

    /// `deflate` only with 1.0.0: 2.0.0 deliveries carry a per-connection join_ref, which would
    /// make the compressed bytes differ per subscriber.
    init(version: PhoenixVersion, deflate: Bool) {
        self.version = version
        let deflate = deflate && version == .v1
        self.format = version == .v1 ? (deflate ? WireFormat.phoenixV1Deflate : WireFormat.phoenixV1) : WireFormat.phoenixV2
        self.inflater = deflate ? try? MessageInflater() : nil
    }

    func greeting(clientID: String) -> ByteBuffer? {
        self.clientID = clientID
        return nil
    }

    func receive(text: ByteBuffer, session: WebSocketSession) {
        // Decoded first, as the native wire's frames are.
        var isASCII = false
        let decoded = PhoenixCodec.decode(text, version: version, limits: session.decodingLimits, isASCII: &isASCII)
        guard isASCII || UTF8Check.isValid(text) else { return session.refuseInvalidUTF8() }
        let request: PhoenixRequest
        switch decoded {
        case .success(let decoded): request = decoded
        case .failure(let error):
            session.reply(unaddressedError(error))
            return
        }
        let version = self.version
        func reply(status: StaticString, _ response: (inout JSONWriter) -> Void) {
            session.reply(
                PhoenixCodec.reply(version, joinRef: request.joinRef, ref: request.ref, topic: request.topic, status: status, response: response)
            )
        }
        func unmatched() {
            reply(status: "error") { $0.object { $0.key("reason"); $0.plainString("unmatched topic") } }
        }

        if request.topic == "phoenix" {
            guard request.event == "heartbeat" else { return unmatched() }
            return reply(status: "ok") { $0.object { _ in } }
        }
        guard request.topic == PhoenixCodec.channelTopic else { return unmatched() }

        switch request.event {
        case "phx_join":
            if joined { close(session) }  // a second join replaces the channel, as in Phoenix
            joined = true
            joinRef = request.joinRef ?? request.ref
            let clientID = self.clientID
            reply(status: "ok") { o in
                o.object { r in
                    r.key("type"); r.plainString("info")
                    r.key("message"); r.plainString("Connected successfully")
                    r.member("client_id", clientID)
                    r.key("ts"); r.timestamp(millis: WallClock.nowMillis())
                }
            }
        case "phx_leave":
            guard joined else { return unmatched() }
            reply(status: "ok") { $0.object { _ in } }
            close(session)
        case _ where joined && request.command != nil:
            let joinRef = self.joinRef
            let ref = request.ref
            let requestID = request.requestID
            let encode = { (message: ServerMessage, buffer: inout ByteBuffer) in
                PhoenixCodec.appendReply(version, joinRef: joinRef, ref: ref, message: message, requestID: requestID, to: &buffer)
            }
            switch request.command! {
            case .success(let command): session.execute(command, encode: encode)
            case .failure(let error): session.respond { encode(.error(error), &$0) }
            }
        case _ where joined:
            reply(status: "error") { $0.object { $0.key("reason"); $0.string("unknown event '\(request.event)'") } }
        default:
            unmatched()
        }
    }

    /// Leaves the channel: its subscriptions go, and the client gets `phx_close`.
    private func close(_ session: WebSocketSession) {
        session.leaveAll()
        session.reply(PhoenixCodec.push(version, joinRef: joinRef, topic: PhoenixCodec.channelTopic, event: "phx_close") { $0.object { _ in } })
        joined = false
        joinRef = nil
    }

    func notice(_ message: ServerMessage) -> ByteBuffer {
        PhoenixCodec.notice(version, joinRef: joinRef, message: message)
    }

    func unaddressedError(_ error: PubSubError) -> ByteBuffer {
        PhoenixCodec.push(version, joinRef: nil, topic: "phoenix", event: "phx_error") { o in
            NativeCodec.write(.error(error), requestID: nil, into: &o)
        }
    }
}
