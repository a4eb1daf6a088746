/// What the client needs of a server frame (docs/protocol.md, "Server frames").
enum ServerFrame: Sendable, Hashable {
    /// `subscribed`: `seq` is the topic's last seq before the replay, `replayed` how many
    /// events of history follow.
    struct Subscribed: Sendable, Hashable {
        var requestID: String?
        var topic: String
        var seq: Int
        var epoch: String?
        var replayed: Int
        var pattern: Bool
    }

    case connected(clientID: String)
    case subscribed(Subscribed)
    case published(requestID: String?, PublishReceipt)
    case event(topic: String, seq: Int, id: String, payload: RawJSON, timestamp: String)
    case error(requestID: String?, code: String, message: String)
    case topicDeleted(topic: String)
    /// Frames the client has nothing to do with: `pong`, `unsubscribed`, drop notices,
    /// `server_shutdown` (the close that follows is what counts).
    case other

    /// nil for text that is not a JSON object with a known shape.
    init?(text: String) {
        guard let frame = JSONMembers(text), let type = frame.string("type") else { return nil }
        let requestID = frame.string("request_id")
        switch type {
        case "event":
            guard let topic = frame.string("topic"), let seq = frame.int("seq"), let message = frame.object("message"),
                let id = message.string("id"), let payload = message.raw("payload")
            else { return nil }
            self = .event(topic: topic, seq: seq, id: id, payload: RawJSON(trusted: payload), timestamp: frame.string("ts") ?? "")
        case "ack":
            switch frame.string("action") {
            case "subscribed":
                guard let topic = frame.string("topic") else { return nil }
                self = .subscribed(
                    Subscribed(
                        requestID: requestID, topic: topic, seq: frame.int("seq") ?? 0, epoch: frame.string("epoch"),
                        replayed: frame.int("replayed") ?? 0, pattern: frame.bool("pattern") ?? false
                    )
                )
            case "published":
                guard let topic = frame.string("topic"), let seq = frame.int("seq"), let id = frame.string("message_id") else { return nil }
                let stats = frame.object("stats")
                self = .published(
                    requestID: requestID,
                    PublishReceipt(topic: topic, messageID: id, seq: seq, delivered: stats?.int("delivered"), dropped: stats?.int("dropped"))
                )
            default:
                self = .other
            }
        case "error":
            let error = frame.object("error")
            self = .error(requestID: requestID, code: error?.string("code") ?? "INTERNAL", message: error?.string("message") ?? "")
        case "info":
            switch frame.string("msg") {
            case "connected": self = .connected(clientID: frame.string("client_id") ?? "")
            case "topic_deleted":
                guard let topic = frame.string("topic") else { return nil }
                self = .topicDeleted(topic: topic)
            default: self = .other
            }
        default:
            self = .other
        }
    }
}

/// The frames the client sends (docs/protocol.md, "Client frames"), written in the member order
/// the server reads fastest.
enum ClientFrame {
    static func subscribe(_ topic: String, requestID: String, lastN: Int? = nil, since: Int? = nil, epoch: String? = nil) -> String {
        var frame = #"{"type":"subscribe","topic":"# + jsonString(topic)
        if let lastN { frame += #","last_n":\#(lastN)"# }
        if let since { frame += #","since":\#(since)"# }
        if let epoch { frame += #","epoch":"# + jsonString(epoch) }
        return frame + #","request_id":"# + jsonString(requestID) + "}"
    }

    static func unsubscribe(_ topic: String) -> String {
        #"{"type":"unsubscribe","topic":"# + jsonString(topic) + "}"
    }

    static func publish(_ topic: String, message: RawJSON, requestID: String?) -> String {
        let head = #"{"type":"publish","topic":"# + jsonString(topic) + #","message":"# + message.text
        guard let requestID else { return head + #","ack":false}"# }
        return head + #","request_id":"# + jsonString(requestID) + "}"
    }
}
