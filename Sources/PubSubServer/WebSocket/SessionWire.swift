import NIOCore
import PubSubCore
import PubSubProtocol

/// How a ``WebSocketSession`` speaks to its client: text frames in, as ``WireRequest``s for the
/// ``CommandDispatcher``; notices and errors out, as frames. Event-loop confined, one per
/// connection. It decides nothing about topics or queues.
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
    /// Whether several messages may share a text frame, one per line, both ways
    /// (`/ws?batch=1`, ``BatchedFrames``).
    var batched: Bool { get }
    /// What one text frame asks; nil when it is not UTF-8 (RFC 6455 8.1: the connection is
    /// closed with 1007). The decoder's scan vouches for text all of ASCII; other text is
    /// checked after decoding.
    func decode(_ text: ByteBuffer, limits: DecodingLimits) -> WireRequest?
    /// A server-initiated message (topic deleted, drops, shutdown, slow consumer).
    func notice(_ message: ServerMessage) -> ByteBuffer
    /// An error that answers no particular request (binary frames).
    func unaddressedError(_ error: PubSubError) -> ByteBuffer
    /// Whether a binary frame is read as JSON, as a text frame is (Phoenix's 1.0.0 serializer
    /// decodes either); otherwise it is answered `BAD_REQUEST`.
    var readsJSONInBinaryFrames: Bool { get }
}

/// The native JSON protocol at `/ws` (docs/protocol.md).
final class NativeWire: SessionWire {
    let readsJSONInBinaryFrames = false
    let format: Int
    let sendsPings = true
    let deliveryPrefix: ByteBuffer? = nil
    let inflater: MessageInflater?
    let batched: Bool

    /// A batched connection is never compressed: its shared frames are compressed one message
    /// each, and joining them would mean compressing every batch for each connection.
    init(deflate: Bool, batched: Bool = false) {
        let deflate = deflate && !batched
        format = deflate ? WireFormat.nativeDeflate : WireFormat.native
        inflater = deflate ? try? MessageInflater() : nil
        self.batched = batched
    }

    func greeting(clientID: String) -> ByteBuffer? {
        NativeCodec.frame(.connected(clientID: clientID))
    }

    func decode(_ text: ByteBuffer, limits: DecodingLimits) -> WireRequest? {
        var requestID: String?
        var isASCII = false
        let command = NativeCodec.decode(text, limits: limits, requestID: &requestID, isASCII: &isASCII)
        guard isASCII || UTF8Check.isValid(text) else { return nil }
        switch consume command {
        case .success(let command): return .command(command, .native(requestID: requestID))
        case .failure(let error): return .reply(NativeCodec.frame(.error(error), requestID: requestID))
        }
    }

    func notice(_ message: ServerMessage) -> ByteBuffer {
        NativeCodec.frame(message)
    }

    func unaddressedError(_ error: PubSubError) -> ByteBuffer {
        NativeCodec.frame(.error(error))
    }
}
