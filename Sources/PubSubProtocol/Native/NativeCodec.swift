import NIOCore
import PubSubCore

/// The native JSON protocol at `/ws` (SPEC 2): client frames to ``ClientRequest``s, replies
/// and events to complete WebSocket frames.
///
///     let request = NativeCodec.decode(frameData, limits: DecodingLimits())
///     let pong = NativeCodec.frame(.pong, requestID: request.requestID)
public enum NativeCodec {
    /// Decodes one text frame's payload.
    public static func decode(_ text: ByteBuffer, limits: DecodingLimits) -> ClientRequest {
        var requestID: String?
        var isASCII = false
        let command = decode(text, limits: limits, requestID: &requestID, isASCII: &isASCII)
        return ClientRequest(requestID: requestID, command: command)
    }

    /// ``decode(_:limits:)`` in two parts, the command returned and the `request_id` to echo
    /// (set even when the command is refused): the server's hot path moves the command on
    /// without copying it out of a request. `isASCII` is set when the text is a JSON object
    /// all of whose bytes are ASCII: valid UTF-8 with no check of its own (RFC 6455 asks it of
    /// text frames), since the scan saw every byte. Left false otherwise: check the text then.
    public static func decode(
        _ text: ByteBuffer, limits: DecodingLimits, requestID: inout String?, isASCII: inout Bool
    ) -> Result<ClientCommand, PubSubError> {
        do throws(PubSubError) {
            return .success(
                try withJSONObject(text, isASCII: &isASCII) { fields throws(PubSubError) -> ClientCommand in
                    try decodeRequestID(fields, into: &requestID)
                    return try decodeCommand(fields, limits: limits)
                }
            )
        } catch {
            return .failure(error)
        }
    }

    private static func decodeCommand(_ fields: JSONFields, limits: DecodingLimits) throws(PubSubError) -> ClientCommand {
        // The type is matched as bytes; a String is built only for an escaped or unknown one.
        if let slice = fields.slice(.type), let text = fields.plainText(of: slice), let name = CommandName(text) {
            return try command(name, fields: fields, limits: limits)
        }
        guard let type = try fields.string(.type, required: true) else { throw .badRequest("missing field 'type'") }
        return try command(type: type, fields: fields, limits: limits)
    }

    /// The command named `type` with its fields (shared with the Phoenix codec, whose events
    /// carry the same payloads).
    static func command(type: String, fields: JSONFields, limits: DecodingLimits) throws(PubSubError) -> ClientCommand {
        var type = type
        guard let name = type.withUTF8({ CommandName(UnsafeRawBufferPointer($0)) }) else {
            throw .badRequest("unknown type '\(type)'; expected subscribe, unsubscribe, publish, ping or refresh")
        }
        return try command(name, fields: fields, limits: limits)
    }

    @inline(__always)
    private static func command(_ name: CommandName, fields: JSONFields, limits: DecodingLimits) throws(PubSubError) -> ClientCommand {
        switch name {
        case .subscribe:
            let topic = try decodeTopic(fields, patterns: true)
            let presence = try fields.bool(.presence) ?? false
            if presence && TopicPattern.isPattern(topic) {
                throw .badRequest("presence applies to a topic, not a pattern: subscribe each topic whose presence you want")
            }
            return .subscribe(topic: topic, replay: try decodeReplay(fields), presence: presence)
        case .unsubscribe:
            return .unsubscribe(topic: try decodeTopic(fields, patterns: true))
        case .publish:
            let topic = try decodeTopic(fields)
            let message = try decodeMessage(fields, limits: limits)
            return .publish(topic: topic, message: message, ack: try fields.bool(.ack) ?? true)
        case .ping:
            return .ping
        case .refresh:
            guard let token = try fields.string(.token, required: true), !token.isEmpty, token.utf8.count <= Self.maxTokenLength else {
                throw .badRequest("field 'token' must be a token of 1 to \(Self.maxTokenLength) characters")
            }
            return .refresh(token: token)
        }
    }

    /// The longest token a refresh may carry.
    public static let maxTokenLength = 8_192

    /// The commands' names, recognised from their bytes.
    private enum CommandName {
        case subscribe, unsubscribe, publish, ping, refresh

        init?(_ text: UnsafeRawBufferPointer) {
            // The length is matched by the switch; the bytes by `equal`.
            func matches(_ literal: StaticString) -> Bool { JSONScanner.equal(text.baseAddress!, literal) }
            switch text.count {
            case 7 where matches("publish"): self = .publish
            case 7 where matches("refresh"): self = .refresh
            case 9 where matches("subscribe"): self = .subscribe
            case 11 where matches("unsubscribe"): self = .unsubscribe
            case 4 where matches("ping"): self = .ping
            default: return nil
            }
        }
    }

    // MARK: server frames

    /// A whole WebSocket text frame holding `message` as a native JSON object.
    public static func frame(_ message: ServerMessage, requestID: String? = nil) -> ByteBuffer {
        var buffer = ByteBuffer()
        append(message, requestID: requestID, to: &buffer)
        return buffer
    }

    /// Appends `message` as a whole frame to `buffer` (a connection's replies of one read are
    /// built one after another in one buffer).
    public static func append(_ message: ServerMessage, requestID: String?, to buffer: inout ByteBuffer) {
        JSONWriter.append(to: &buffer, estimatedSize: estimatedSize(message, requestID: requestID), frame: true) {
            write(message, requestID: requestID, into: &$0)
        }
    }

    /// Room for `message`'s JSON: enough for everything but very long error texts, which are
    /// then built aside and copied.
    static func estimatedSize(_ message: ServerMessage, requestID: String?) -> Int {
        var size = 224 + (requestID?.utf8.count ?? 0) * 2
        switch message {
        case .published(let receipt): size += receipt.topic.utf8.count + receipt.messageID.utf8Count * 2
        case .subscribed(let receipt): size += receipt.topic.utf8.count
        case .unsubscribed(let topic, _), .topicDeleted(let topic): size += topic.utf8.count
        case .error(let error): size += error.message.utf8.count + 64 * error.context.count
        case .connected(let clientID): size += clientID.utf8.count
        case .messagesDropped(_, let topic): size += topic?.utf8.count ?? 0
        case .pong, .serverShutdown, .refreshed: break
        }
        return size
    }

    /// Writes `message` as the native protocol's JSON object: `{"type":…, …, "request_id":…, "ts":…}`.
    /// The Phoenix codec embeds the same objects in its replies and pushes.
    public static func write(_ message: ServerMessage, requestID: String?, into json: inout JSONWriter) {
        json.object { o in
            o.key("type")
            switch message {
            case .connected(let clientID):
                o.plainString("info")
                o.key("msg"); o.plainString("connected")
                o.member("client_id", clientID)
            case .subscribed(let receipt):
                o.plainString("ack")
                o.key("action"); o.plainString("subscribed")
                o.key("topic"); o.plainString(receipt.topic)
                if receipt.pattern {
                    // Each topic it matches has its own seq and epoch, on its events.
                    o.member("pattern", true)
                    o.member("subscriber_count", receipt.subscriberCount)
                    break
                }
                o.member("subscriber_count", receipt.subscriberCount)
                o.member("seq", receipt.seq)
                o.key("epoch"); o.plainString(receipt.epoch)
                o.member("replayed", receipt.replayed)
                if let recovered = receipt.recovered { o.member("recovered", recovered) }
            case .unsubscribed(let topic, let subscriberCount):
                o.plainString("ack")
                o.key("action"); o.plainString("unsubscribed")
                o.key("topic"); o.plainString(topic)
                o.member("subscriber_count", subscriberCount)
            case .published(let receipt):
                // One per publish: its fixed members as literals, like the event's.
                o.openVerbatim(#""ack","action":"published","topic":"#)
                o.plainString(receipt.topic)
                o.verbatim(#","message_id":"#)
                o.messageID(receipt.messageID)
                o.verbatim(#","seq":"#)
                o.int(receipt.seq)
                if let delivered = receipt.delivered, let dropped = receipt.dropped {
                    o.verbatim(#","stats":{"delivered":"#)
                    o.int(delivered)
                    o.verbatim(#","dropped":"#)
                    o.int(dropped)
                    o.closeVerbatim("}")
                } else {
                    // Delivery happens on every node after the reply (SPEC 6): nothing to count.
                    o.closeVerbatim("")
                }
            case .pong:
                o.plainString("pong")
            case .refreshed(let expiresAtMillis):
                o.plainString("ack")
                o.key("action"); o.plainString("refreshed")
                if let expiresAtMillis { o.key("expires_at"); o.timestamp(millis: expiresAtMillis) }
            case .error(let error):
                o.plainString("error")
                o.key("error")
                o.object { e in
                    e.key("code"); e.plainString(error.code.rawValue)
                    e.member("message", error.message)
                    for (key, value) in error.context.sorted(by: { $0.key < $1.key }) {
                        e.key(escaping: key); e.string(value)
                    }
                }
            case .topicDeleted(let topic):
                o.plainString("info")
                o.key("msg"); o.plainString("topic_deleted")
                o.key("topic"); o.plainString(topic)
            case .messagesDropped(let count, let topic):
                o.plainString("info")
                o.key("msg"); o.plainString("messages_dropped")
                if let topic { o.key("topic"); o.plainString(topic) }
                o.member("count", count)
            case .serverShutdown:
                o.plainString("info")
                o.key("msg"); o.plainString("server_shutdown")
            }
            if let requestID { o.member("request_id", requestID) }
            // A publish's ack carries the instant of the publish (its event's `ts`): no second clock read.
            let now: Int64 = if case .published(let receipt) = message { receipt.timestampMillis } else { WallClock.nowMillis() }
            o.key("ts"); o.timestamp(millis: now)
        }
    }
}

/// What the server says to a client, whatever the wire format.
public enum ServerMessage: Sendable {
    case connected(clientID: String)
    case subscribed(SubscribeReceipt)
    case unsubscribed(topic: String, subscriberCount: Int)
    case published(PublishReceipt)
    case pong
    /// A refresh took: the new token's expiry (nil: none, an API key).
    case refreshed(expiresAtMillis: Int64?)
    case error(PubSubError)
    case topicDeleted(String)
    /// Events dropped from the queue (no topic: any of them), or publications of `topic` the
    /// engine could not bring after losing its link.
    case messagesDropped(Int, topic: String? = nil)
    case serverShutdown

    public var isError: Bool {
        if case .error = self { return true }
        return false
    }
}

/// Encodes a publication as the native `event` frame, once per publication:
/// `{"type":"event","topic":…,"seq":…,"message":{"id":…,"payload":…},"ts":…}`.
public struct NativeEventEncoder: PublicationEncoder {
    public init() {}

    public func encode(_ publication: borrowing PublicationContent) -> ByteBuffer {
        if let length = NativeEventFrame.textLength(publication) {
            let frameLength = NativeEventFrame.frameLength(textLength: length)
            var buffer = ByteBufferAllocator().buffer(capacity: frameLength)
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: frameLength) { raw in
                NativeEventFrame.write(publication, textLength: length, to: raw.baseAddress!)
            }
            return buffer
        }
        let size = Self.estimatedSize(publication)
        var buffer = ByteBufferAllocator().buffer(capacity: size + WebSocketFraming.maxHeaderSize)
        JSONWriter.append(to: &buffer, estimatedSize: size, frame: true) { Self.write(publication, into: &$0) }
        return buffer
    }

    /// Written at its exact size (``NativeEventFrame``) when it can be, else by ``JSONWriter``.
    public func encode(_ publication: borrowing PublicationContent, in arena: inout FrameArena) -> ByteBuffer {
        if let length = NativeEventFrame.textLength(publication) {
            let frameLength = NativeEventFrame.frameLength(textLength: length)
            return arena.frame(capacity: frameLength, now: publication.timestampMillis) { region in
                NativeEventFrame.write(publication, textLength: length, to: region.baseAddress!)
            } ?? encode(publication)
        }
        let size = Self.estimatedSize(publication)
        return arena.frame(capacity: JSONWriter.regionSize(estimatedSize: size, frame: true), now: publication.timestampMillis) { region in
            JSONWriter.frame(in: region, estimatedSize: size) { Self.write(publication, into: &$0) }
        } ?? encode(publication)
    }

    /// The payload is followed by `},"ts":"<24 characters>"}`: 34 bytes from the frame's end.
    public func payloadRange(in frame: ByteBuffer, of publication: borrowing PublicationContent) -> Range<Int>? {
        Self.payloadRange(in: frame, payloadLength: publication.payload.readableBytes, after: 34)
    }

    /// `length` bytes of payload ending `suffix` bytes before the end of `frame`, checked
    /// against the bytes around them (`:` before, `}` after).
    static func payloadRange(in frame: ByteBuffer, payloadLength length: Int, after suffix: Int) -> Range<Int>? {
        let end = frame.readableBytes - suffix
        let start = end - length
        guard start > 0, end < frame.readableBytes else { return nil }
        // Read through the frame's bytes: two `getInteger` calls cost several times as much.
        let framed = frame.withUnsafeReadableBytes { bytes in
            bytes[start - 1] == UInt8(ascii: ":") && bytes[end] == UInt8(ascii: "}")
        }
        return framed ? start..<end : nil
    }

    /// Room for the event object: the payload, topic and id plus the fixed members.
    static func estimatedSize(_ publication: borrowing PublicationContent) -> Int {
        publication.payload.readableBytes + publication.topic.utf8.count + publication.id.utf8Count * 2 + 128
    }

    /// The event object alone; Phoenix pushes embed it as their payload. (The same bytes as
    /// ``NativeEventFrame`` writes, which the native frame uses where it can.)
    public static func write(_ publication: borrowing PublicationContent, into json: inout JSONWriter) {
        // One shape for every event: its fixed parts are literals.
        json.openVerbatim(#"{"type":"event","topic":"#)
        json.plainString(publication.topic)
        json.verbatim(#","seq":"#)
        json.int(publication.seq)
        json.verbatim(#","message":{"id":"#)
        json.messageID(publication.id)
        json.verbatim(#","payload":"#)
        json.raw(publication.payload)
        json.verbatim(#"},"ts":"#)
        json.timestamp(millis: publication.timestampMillis)
        json.closeVerbatim("}")
    }
}
