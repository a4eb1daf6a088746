import NIOCore
import PubSubCore

/// The native JSON protocol at `/ws` (SPEC 2): client frames to ``ClientRequest``s, replies
/// and events to complete WebSocket frames.
///
///     let request = NativeCodec.decode(frameData, limits: DecodingLimits())
///     let pong = NativeCodec.pong(requestID: request.requestID)
public enum NativeCodec {
    /// Decodes one text frame's payload.
    public static func decode(_ text: ByteBuffer, limits: DecodingLimits) -> ClientRequest {
        var requestID: String?
        do throws(PubSubError) {
            let command = try withJSONObject(text) { fields throws(PubSubError) -> ClientCommand in
                requestID = try? fields.string("request_id")
                return try decodeCommand(fields, requestID: &requestID, limits: limits)
            }
            return ClientRequest(requestID: requestID, command: .success(command))
        } catch {
            return ClientRequest(requestID: requestID, command: .failure(error))
        }
    }

    private static func decodeCommand(
        _ fields: JSONFields, requestID: inout String?, limits: DecodingLimits
    ) throws(PubSubError) -> ClientCommand {
        if let id = requestID, id.utf8.count > DecodingLimits.maxRequestIDLength {
            requestID = nil
            throw .badRequest("request_id is longer than \(DecodingLimits.maxRequestIDLength) characters")
        }
        if fields.slice("request_id") != nil, requestID == nil, fields.slice("request_id")?.kind != .null {
            throw .badRequest("field 'request_id' must be a string")
        }
        guard let type = try fields.string("type", required: true) else { throw .badRequest("missing field 'type'") }
        switch type {
        case "subscribe":
            return .subscribe(topic: try decodeTopic(fields), replay: try decodeReplay(fields))
        case "unsubscribe":
            return .unsubscribe(topic: try decodeTopic(fields))
        case "publish":
            let topic = try decodeTopic(fields)
            let message = try decodeMessage(fields, limits: limits)
            return .publish(topic: topic, message: message, ack: try fields.bool("ack") ?? true)
        case "ping":
            return .ping
        default:
            throw .badRequest("unknown type '\(type)'; expected subscribe, unsubscribe, publish or ping")
        }
    }

    // MARK: server frames

    /// Builds one server frame: `{"type":…, <body>, "request_id":…, "ts":…}`.
    static func frame(
        _ type: StaticString, requestID: String?, now: Int64 = MemoryBroker.nowMillis(),
        capacity: Int = 192, _ body: (inout JSONWriter) -> Void
    ) -> ByteBuffer {
        var json = JSONWriter(frame: true, capacity: capacity)
        json.object { o in
            o.key("type"); o.plainString(type.description)
            body(&o)
            if let requestID { o.member("request_id", requestID) }
            o.key("ts"); o.timestamp(millis: now)
        }
        return json.finish()
    }

    public static func connected(clientID: String) -> ByteBuffer {
        frame("info", requestID: nil) { o in
            o.key("msg"); o.plainString("connected")
            o.member("client_id", clientID)
        }
    }

    public static func subscribed(_ receipt: SubscribeReceipt, requestID: String?) -> ByteBuffer {
        frame("ack", requestID: requestID) { o in
            o.key("action"); o.plainString("subscribed")
            o.key("topic"); o.plainString(receipt.topic)
            o.member("subscriber_count", receipt.subscriberCount)
            o.member("seq", receipt.seq)
            o.key("epoch"); o.plainString(receipt.epoch)
            o.member("replayed", receipt.replayed)
            if let recovered = receipt.recovered { o.member("recovered", recovered) }
        }
    }

    public static func unsubscribed(topic: String, subscriberCount: Int, requestID: String?) -> ByteBuffer {
        frame("ack", requestID: requestID) { o in
            o.key("action"); o.plainString("unsubscribed")
            o.key("topic"); o.plainString(topic)
            o.member("subscriber_count", subscriberCount)
        }
    }

    public static func published(_ receipt: PublishReceipt, requestID: String?) -> ByteBuffer {
        frame("ack", requestID: requestID) { o in
            o.key("action"); o.plainString("published")
            o.key("topic"); o.plainString(receipt.topic)
            o.member("message_id", receipt.messageID)
            o.member("seq", receipt.seq)
            o.key("stats")
            o.object { s in
                s.member("delivered", receipt.delivered)
                s.member("dropped", receipt.dropped)
            }
        }
    }

    public static func pong(requestID: String?) -> ByteBuffer {
        frame("pong", requestID: requestID) { _ in }
    }

    public static func error(_ error: PubSubError, requestID: String?) -> ByteBuffer {
        frame("error", requestID: requestID) { o in
            o.key("error")
            o.object { e in
                e.key("code"); e.plainString(error.code.rawValue)
                e.member("message", error.message)
                for (key, value) in error.context.sorted(by: { $0.key < $1.key }) {
                    e.key(key); e.string(value)
                }
            }
        }
    }

    public static func topicDeleted(_ topic: String) -> ByteBuffer {
        frame("info", requestID: nil) { o in
            o.key("msg"); o.plainString("topic_deleted")
            o.key("topic"); o.plainString(topic)
        }
    }

    public static func messagesDropped(_ count: Int) -> ByteBuffer {
        frame("info", requestID: nil) { o in
            o.key("msg"); o.plainString("messages_dropped")
            o.member("count", count)
        }
    }

    public static func serverShutdown() -> ByteBuffer {
        frame("info", requestID: nil) { o in
            o.key("msg"); o.plainString("server_shutdown")
        }
    }
}

/// Encodes a publication as the native `event` frame, once per publication:
/// `{"type":"event","topic":…,"seq":…,"message":{"id":…,"payload":…},"ts":…}`.
public struct NativeEventEncoder: PublicationEncoder {
    public init() {}

    public func encode(_ publication: Publication) -> ByteBuffer {
        var json = JSONWriter(frame: true, capacity: publication.payload.readableBytes + publication.topic.utf8.count + 128)
        json.object { o in
            o.key("type"); o.plainString("event")
            o.key("topic"); o.plainString(publication.topic)
            o.member("seq", publication.seq)
            o.key("message")
            o.object { m in
                m.member("id", publication.id)
                m.key("payload"); m.raw(publication.payload)
            }
            o.key("ts"); o.timestamp(millis: publication.timestampMillis)
        }
        return json.finish()
    }
}
