import NIOCore
import PubSubCore
import PubSubProtocol

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

    func decode(_ text: ByteBuffer, limits: DecodingLimits) -> WireRequest? {
        var isASCII = false
        let decoded = PhoenixCodec.decode(text, version: version, limits: limits, isASCII: &isASCII)
        guard isASCII || UTF8Check.isValid(text) else { return nil }
        switch decoded {
        case .success(let request): return handle(request)
        case .failure(let error): return .reply(unaddressedError(error))
        }
    }

    private func handle(_ request: PhoenixRequest) -> WireRequest {
        let version = self.version
        func reply(status: StaticString, _ response: (inout JSONWriter) -> Void) -> ByteBuffer {
            PhoenixCodec.reply(version, joinRef: request.joinRef, ref: request.ref, topic: request.topic, status: status, response: response)
        }
        func unmatched() -> WireRequest {
            .reply(reply(status: "error") { $0.object { $0.key("reason"); $0.plainString("unmatched topic") } })
        }
        if request.topic == "phoenix" {
            guard request.event == "heartbeat" else { return unmatched() }
            return .reply(reply(status: "ok") { $0.object { _ in } })
        }
        guard request.topic == PhoenixCodec.channelTopic else { return unmatched() }
        switch request.event {
        case "phx_join":
            let closing = joined ? close() : nil
            joined = true
            joinRef = request.joinRef ?? request.ref
            let clientID = self.clientID
            var frames = closing ?? ByteBuffer()
            frames.writeImmutableBuffer(
                reply(status: "ok") { o in
                    o.object { r in
                        r.key("type"); r.plainString("info")
                        r.key("message"); r.plainString("Connected successfully")
                        r.member("client_id", clientID)
                        r.key("ts"); r.timestamp(millis: WallClock.nowMillis())
                    }
                }
            )
            // A second join replaces the channel, as in Phoenix.
            return closing == nil ? .reply(frames) : .leaveAll(then: frames)
        case "phx_leave":
            guard joined else { return unmatched() }
            var frames = reply(status: "ok") { $0.object { _ in } }
            frames.writeImmutableBuffer(close())
            return .leaveAll(then: frames)
        case _ where joined && request.command != nil:
            let address = ReplyAddress.phoenix(version, joinRef: joinRef, ref: request.ref, requestID: request.requestID)
            switch request.command! {
            case .success(let command):
                return .command(command, address)
            case .failure(let error):
                var frame = ByteBuffer()
                address.append(.error(error), to: &frame)
                return .reply(frame)
            }
        case _ where joined:
            return .reply(reply(status: "error") { $0.object { $0.key("reason"); $0.string("unknown event '\(request.event)'") } })
        default:
            return unmatched()
        }
    }

    /// Leaves the channel: the `phx_close` push that tells the client.
    private func close() -> ByteBuffer {
        let push = PhoenixCodec.push(version, joinRef: joinRef, topic: PhoenixCodec.channelTopic, event: "phx_close") { $0.object { _ in } }
        joined = false
        joinRef = nil
        return push
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
