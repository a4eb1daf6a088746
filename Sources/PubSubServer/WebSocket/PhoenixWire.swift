import NIOCore
import PubSubCore
import PubSubProtocol

/// Phoenix Channels at `/ws/websocket`: frames in and out of a ``PhoenixChannel``, the
/// protocol module's state machine for the one channel, `pubsub`, whose events carry the
/// native commands, and the `phoenix` heartbeat topic (docs/protocol.md, "Phoenix Channels").
final class PhoenixWire: SessionWire {
    let format: Int
    let sendsPings = false
    let batched = false
    let inflater: MessageInflater?
    private var channel: PhoenixChannel

    /// `deflate` only with 1.0.0: 2.0.0 deliveries carry a per-connection join_ref, which would
    /// make the compressed bytes differ per subscriber.
    init(version: PhoenixVersion, deflate: Bool) {
        let deflate = deflate && version == .v1
        self.format = version == .v1 ? (deflate ? WireFormat.phoenixV1Deflate : WireFormat.phoenixV1) : WireFormat.phoenixV2
        self.inflater = deflate ? try? MessageInflater() : nil
        self.channel = PhoenixChannel(version: version, clientID: "")
    }

    var deliveryPrefix: ByteBuffer? { channel.deliveryPrefix }
    /// 2.0.0's binary frames are its own binary push format, which this server does not speak.
    var readsJSONInBinaryFrames: Bool { channel.version == .v1 }

    func greeting(clientID: String) -> ByteBuffer? {
        channel = PhoenixChannel(version: channel.version, clientID: clientID)
        return nil
    }

    func decode(_ text: ByteBuffer, limits: DecodingLimits) -> WireRequest? {
        // Decoded first, as the native wire's frames are: text all of ASCII needs no UTF-8 check.
        var isASCII = false
        let decoded = PhoenixCodec.decode(text, version: channel.version, limits: limits, isASCII: &isASCII)
        guard isASCII || UTF8Check.isValid(text) else { return nil }
        switch decoded {
        case .success(let request): return channel.handle(request, now: WallClock.nowMillis())
        case .failure(let error): return .reply(unaddressedError(error))
        }
    }

    func notice(_ message: ServerMessage) -> ByteBuffer {
        channel.notice(message)
    }

    func unaddressedError(_ error: PubSubError) -> ByteBuffer {
        PhoenixChannel.unaddressedError(channel.version, error)
    }
}
