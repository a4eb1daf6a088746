import NIOCore
import PubSubCore

/// Phoenix Channels wire format at `/ws/websocket` (serializers 1.0.0 and 2.0.0), so Phoenix
/// clients (phoenix.js and others) work unchanged.
///
///     v1: {"topic":"pubsub","event":"phx_join","payload":{},"ref":"1","join_ref":"1"}
///     v2: ["1","1","pubsub","phx_join",{}]
///
///     let request = PhoenixCodec.decode(text, version: .v2, limits: DecodingLimits())
public enum PhoenixVersion: Sendable, Equatable {
    case v1, v2

    /// From the `vsn` query parameter: absent means 1.0.0, as in Phoenix.
    public init?(vsn: String?) {
        switch vsn {
        case nil, "1.0.0": self = .v1
        case "2.0.0": self = .v2
        default: return nil
        }
    }
}

/// One decoded Phoenix message. Refs are kept as their raw JSON text (`"1"`, `1` or `null`) so
/// replies echo exactly what the client sent.
public struct PhoenixRequest: Sendable {
    public var joinRef: ByteBuffer?
    public var ref: ByteBuffer?
    public var topic: String
    public var event: String
    /// `request_id` from the payload, if any.
    public var requestID: String?
    /// For the channel events `ping`, `subscribe`, `unsubscribe` and `publish`.
    public var command: Result<ClientCommand, PubSubError>?
}

public enum PhoenixCodec {
    public static let channelTopic = "pubsub"
    static let commandEvents: Set<String> = ["ping", "subscribe", "unsubscribe", "publish", "refresh"]
    /// The longest `ref` or `join_ref`, in bytes of its JSON text without quotes (SPEC 2.5).
    public static let maxRefLength = 64

    public static func decode(_ text: ByteBuffer, version: PhoenixVersion, limits: DecodingLimits) -> Result<PhoenixRequest, PubSubError> {
        var isASCII = false
        return decode(text, version: version, limits: limits, isASCII: &isASCII)
    }

    /// ``decode(_:version:limits:)``, setting `isASCII` when the text is JSON all of whose bytes
    /// are ASCII (valid UTF-8 with no check of its own, as for ``NativeCodec``); left false
    /// otherwise.
    public static func decode(
        _ text: ByteBuffer, version: PhoenixVersion, limits: DecodingLimits, isASCII: inout Bool
    ) -> Result<PhoenixRequest, PubSubError> {
        let frame = text
        return text.withUnsafeReadableBytes { bytes -> Result<PhoenixRequest, PubSubError> in
            do throws(PubSubError) {
                var scanner = JSONScanner(bytes)
                let joinRef, ref, topic, event, payload: JSONSlice?
                switch version {
                case .v2:
                    let elements: [JSONSlice]
                    do throws(JSONError) { elements = try scanner.topLevelArray() } catch { throw .badRequest(error.description) }
                    guard elements.count == 5 else {
                        throw .badRequest("a 2.0.0 message is [join_ref, ref, topic, event, payload]")
                    }
                    (joinRef, ref, topic, event, payload) = (elements[0], elements[1], elements[2], elements[3], elements[4])
                case .v1:
                    var table = JSONFieldTable()
                    do throws(JSONError) { try scanner.topLevelObject(into: &table) } catch { throw .badRequest(error.description) }
                    (joinRef, ref, topic, event, payload) = (table[.joinRef], table[.ref], table[.topic], table[.event], table[.payload])
                }
                isASCII = scanner.isASCII
                func refText(_ slice: JSONSlice?) throws(PubSubError) -> ByteBuffer? {
                    guard let slice, slice.kind != .null else { return nil }
                    guard slice.kind == .string || slice.kind == .number else { throw .badRequest("refs must be strings") }
                    // Every reply and (join_ref, 2.0.0) every push echoes it: kept short.
                    let length = slice.range.count - (slice.kind == .string ? 2 : 0)
                    guard length <= maxRefLength else { throw .badRequest("refs are at most \(maxRefLength) characters") }
                    // Its JSON text in a buffer of its own: replies echo it as is, and a slice
                    // would keep the whole read alive.
                    return ByteBuffer(bytes: UnsafeRawBufferPointer(rebasing: bytes[slice.range]))
                }
                func text(_ slice: JSONSlice?, _ name: String) throws(PubSubError) -> String {
                    guard let slice, slice.kind == .string else { throw .badRequest("'\(name)' must be a string") }
                    let inner = UnsafeRawBufferPointer(rebasing: bytes[(slice.range.lowerBound + 1)..<(slice.range.upperBound - 1)])
                    do throws(JSONError) { return try JSONScanner.decodeString(inner) } catch { throw .badRequest(error.description) }
                }
                var request = PhoenixRequest(
                    joinRef: try refText(joinRef), ref: try refText(ref),
                    topic: try text(topic, "topic"), event: try text(event, "event")
                )
                guard let payload, payload.kind == .object else { throw .badRequest("'payload' must be an object") }
                if commandEvents.contains(request.event) {
                    var table = JSONFieldTable()
                    do throws(JSONError) { try JSONScanner.fields(of: payload, in: bytes, into: &table) } catch { throw .badRequest(error.description) }
                    let event = request.event
                    var requestID: String?
                    do throws(PubSubError) {
                        request.command = .success(
                            try JSONFields.withFields(&table, bytes: bytes, buffer: frame) { fields throws(PubSubError) in
                                try decodeRequestID(fields, into: &requestID)
                                return try NativeCodec.command(type: event, fields: fields, limits: limits)
                            }
                        )
                    } catch {
                        request.command = .failure(error)
                    }
                    request.requestID = requestID
                }
                return .success(request)
            } catch {
                return .failure(error)
            }
        }
    }

    // MARK: encoding

    /// `phx_reply` with `{"status":…,"response":…}`; v1 replies carry no join_ref, as Phoenix's.
    public static func reply(
        _ version: PhoenixVersion, joinRef: ByteBuffer?, ref: ByteBuffer?, topic: String, status: StaticString,
        response: (inout JSONWriter) -> Void
    ) -> ByteBuffer {
        message(version, joinRef: joinRef, ref: ref, topic: topic, event: "phx_reply") { p in
            p.object { o in
                o.key("status"); o.plainString(status.description)
                o.key("response"); response(&o)
            }
        }
    }

    /// A push from the server (ref null).
    public static func push(
        _ version: PhoenixVersion, joinRef: ByteBuffer?, topic: String, event: String, payload: (inout JSONWriter) -> Void
    ) -> ByteBuffer {
        message(version, joinRef: joinRef, ref: nil, topic: topic, event: event, payload: payload)
    }

    /// A native server message as a Phoenix reply (acks, pong, errors) to the request `ref`.
    public static func reply(
        _ version: PhoenixVersion, joinRef: ByteBuffer?, ref: ByteBuffer?, message: ServerMessage, requestID: String?
    ) -> ByteBuffer {
        reply(version, joinRef: joinRef, ref: ref, topic: channelTopic, status: message.isError ? "error" : "ok") { o in
            NativeCodec.write(message, requestID: requestID, into: &o)
        }
    }

    /// ``reply(_:joinRef:ref:message:requestID:)`` appended to `buffer`.
    public static func appendReply(
        _ version: PhoenixVersion, joinRef: ByteBuffer?, ref: ByteBuffer?, message: ServerMessage, requestID: String?,
        to buffer: inout ByteBuffer
    ) {
        let size = NativeCodec.estimatedSize(message, requestID: requestID) + 96 + (joinRef?.readableBytes ?? 0) + (ref?.readableBytes ?? 0)
        JSONWriter.append(to: &buffer, estimatedSize: size, frame: true) { json in
            write(version, joinRef: joinRef, ref: ref, topic: channelTopic, event: "phx_reply", into: &json) { p in
                p.object { o in
                    o.key("status"); o.plainString(message.isError ? "error" : "ok")
                    o.key("response"); NativeCodec.write(message, requestID: requestID, into: &o)
                }
            }
        }
    }

    /// A native notice (topic_deleted, messages_dropped, server_shutdown, errors) as a push on the channel.
    public static func notice(_ version: PhoenixVersion, joinRef: ByteBuffer?, message: ServerMessage) -> ByteBuffer {
        push(version, joinRef: joinRef, topic: channelTopic, event: message.isError ? "error" : "info") { o in
            NativeCodec.write(message, requestID: nil, into: &o)
        }
    }

    static func message(
        _ version: PhoenixVersion, joinRef: ByteBuffer?, ref: ByteBuffer?, topic: String, event: String,
        payload: (inout JSONWriter) -> Void, capacity: Int = 256
    ) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: capacity + WebSocketFraming.maxHeaderSize)
        JSONWriter.append(to: &buffer, estimatedSize: capacity, frame: true) { json in
            write(version, joinRef: joinRef, ref: ref, topic: topic, event: event, into: &json, payload: payload)
        }
        return buffer
    }

    static func write(
        _ version: PhoenixVersion, joinRef: ByteBuffer?, ref: ByteBuffer?, topic: String, event: String,
        into json: inout JSONWriter, payload: (inout JSONWriter) -> Void
    ) {
        switch version {
        case .v2:
            json.array { a in
                if let joinRef { a.raw(joinRef) } else { a.null() }
                if let ref { a.raw(ref) } else { a.null() }
                a.string(topic)
                a.string(event)
                payload(&a)
            }
        case .v1:
            json.object { o in
                o.key("topic"); o.string(topic)
                o.key("event"); o.string(event)
                o.key("payload"); payload(&o)
                o.key("ref")
                if let ref { o.raw(ref) } else { o.null() }
            }
        }
    }
}

/// Encodes a publication once as a Phoenix `message` push on the `pubsub` channel whose payload
/// is the native event object.
///
/// 1.0.0 frames carry no join_ref, so they are whole frames shared by every subscriber.
/// 2.0.0 clients match pushes to their channel by join_ref, which differs per connection: the
/// shared part is everything after the refs (`"pubsub","message",{…}]`, not framed), and each
/// connection writes its own frame header and `[join_ref,null,` before it
/// (``deliveryPrefix(joinRef:)``, ``frameHeader(prefixLength:bodyLength:)``).
public struct PhoenixEventEncoder: PublicationEncoder {
    public let version: PhoenixVersion

    public init(version: PhoenixVersion) {
        self.version = version
    }

    public func encode(_ publication: borrowing PublicationContent) -> ByteBuffer {
        let capacity = Self.estimatedSize(publication)
        switch version {
        case .v1:
            return PhoenixCodec.message(
                version, joinRef: nil, ref: nil, topic: PhoenixCodec.channelTopic, event: "message",
                payload: { NativeEventEncoder.write(publication, into: &$0) }, capacity: capacity
            )
        case .v2:
            var json = JSONWriter(frame: false, capacity: capacity)
            json.string(PhoenixCodec.channelTopic)
            json.string("message")
            NativeEventEncoder.write(publication, into: &json)
            var tail = json.finish()
            tail.writeInteger(UInt8(ascii: "]"))
            return tail
        }
    }

    /// 1.0.0 frames are written into the topic's arena; 2.0.0 bodies (not frames) get their own buffer.
    public func encode(_ publication: borrowing PublicationContent, in arena: inout FrameArena) -> ByteBuffer {
        guard version == .v1 else { return encode(publication) }
        let size = Self.estimatedSize(publication)
        return arena.frame(capacity: JSONWriter.regionSize(estimatedSize: size, frame: true), now: publication.timestampMillis) { region in
            JSONWriter.frame(in: region, estimatedSize: size) { json in
                PhoenixCodec.write(
                    .v1, joinRef: nil, ref: nil, topic: PhoenixCodec.channelTopic, event: "message", into: &json,
                    payload: { NativeEventEncoder.write(publication, into: &$0) }
                )
            }
        } ?? encode(publication)
    }

    private static func estimatedSize(_ publication: borrowing PublicationContent) -> Int {
        publication.payload.readableBytes + publication.topic.utf8.count + 160
    }

    /// After the payload: the event's `},"ts":"…"}` (34 bytes), then `,"ref":null}` (1.0.0) or
    /// `]` (2.0.0 body).
    public func payloadRange(in frame: ByteBuffer, of publication: borrowing PublicationContent) -> Range<Int>? {
        NativeEventEncoder.payloadRange(
            in: frame, payloadLength: publication.payload.readableBytes, after: version == .v1 ? 46 : 35
        )
    }

    /// `[<join_ref>,null,` for a 2.0.0 connection.
    public static func deliveryPrefix(joinRef: ByteBuffer?) -> ByteBuffer {
        var prefix = ByteBuffer(string: "[")
        if var joinRef { prefix.writeBuffer(&joinRef) } else { prefix.writeString("null") }
        prefix.writeString(",null,")
        return prefix
    }
}
