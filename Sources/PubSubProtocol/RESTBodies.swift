import NIOCore
import PubSubCore

/// Request bodies of the REST API, decoded with the same scanner and rules as WebSocket frames.
public enum RESTBodies {
    /// `{"name":"orders"}`
    public static func topicName(_ body: ByteBuffer) throws(PubSubError) -> String {
        try checkUTF8(body)
        return try withJSONObject(body) { fields throws(PubSubError) in
            let name = try fields.string(.name, required: true)!
            try TopicName.validate(name)
            return name
        }
    }

    /// `{"message":…}` (topic from the path) or `{"topic":…,"message":…}` (broadcast).
    public static func publish(
        _ body: ByteBuffer, topicFromPath: String?, maxMessageBytes: Int
    ) throws(PubSubError) -> (topic: String, message: MessageInput) {
        try checkUTF8(body)
        return try withJSONObject(body) { fields throws(PubSubError) in
            let topic: String
            if let topicFromPath {
                try TopicName.validate(topicFromPath)
                topic = topicFromPath
            } else {
                topic = try decodeTopic(fields)
            }
            return (topic, try decodeMessage(fields, limits: DecodingLimits(maxMessageBytes: maxMessageBytes)))
        }
    }

    private static func checkUTF8(_ body: ByteBuffer) throws(PubSubError) {
        guard UTF8Check.isValid(body) else { throw .badRequest("request body is not valid UTF-8") }
    }
}
