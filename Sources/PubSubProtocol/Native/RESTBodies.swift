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

/// Query parameters of the REST API (`last_n`, and `since` for the streams to come): decimal
/// digits only, no sign, no spaces, within the parameter's range.
///
///     let lastN = try RESTQuery.count("last_n", request.uri.queryParameters["last_n"])   // nil when absent
public enum RESTQuery {
    /// A count (`last_n`): 0 ... `Int.max`.
    public static func count(_ name: String, _ raw: Substring?) throws(PubSubError) -> Int? {
        try number(name, raw).map { value throws(PubSubError) in
            guard let count = Int(exactly: value) else { throw .badRequest("\(name) must be at most \(Int.max)") }
            return count
        }
    }

    /// A sequence number (`since`): 0 ... `UInt64.max`.
    public static func sequence(_ name: String, _ raw: Substring?) throws(PubSubError) -> UInt64? {
        try number(name, raw)
    }

    private static func number(_ name: String, _ raw: Substring?) throws(PubSubError) -> UInt64? {
        guard let raw else { return nil }
        guard !raw.isEmpty, raw.utf8.count <= 20, raw.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
            let value = UInt64(raw)
        else {
            throw .badRequest("\(name) must be a non-negative integer")
        }
        return value
    }
}
