import NIOCore
import PubSubCore

/// A decoded client request of the native protocol (SPEC 2.1), wire-format independent, so
/// the Phoenix codec can produce the same commands.
public enum ClientCommand: Sendable {
    /// `presence`: also send the topic's presence list and its changes (SPEC 9).
    case subscribe(topic: String, replay: ReplayRequest, presence: Bool)
    case unsubscribe(topic: String)
    case publish(topic: String, message: MessageInput, ack: Bool)
    case ping
    /// Replaces the connection's token (SPEC 7).
    case refresh(token: String)
}

/// A decoded frame: the command, or why it was refused, with the `request_id` to echo either way.
public struct ClientRequest: Sendable {
    public var requestID: String?
    public var command: Result<ClientCommand, PubSubError>

    public init(requestID: String?, command: Result<ClientCommand, PubSubError>) {
        self.requestID = requestID
        self.command = command
    }
}

/// Limits that decoding enforces.
public struct DecodingLimits: Sendable {
    /// Largest `message` value, in bytes of JSON text (SPEC 4: `PUBSUB_MAX_MESSAGE_BYTES`).
    public var maxMessageBytes: Int
    public static let maxRequestIDLength = 128
    public static let maxMessageIDLength = 128

    public init(maxMessageBytes: Int = 65_536) {
        self.maxMessageBytes = maxMessageBytes
    }
}

/// The `message` member of a publish: `{"id": "...", "payload": ...}` keeps its id, any other
/// JSON value is the whole payload and gets a generated id (SPEC 2.1).
@inline(__always)
func decodeMessage(_ fields: JSONFields, limits: DecodingLimits) throws(PubSubError) -> MessageInput {
    guard let slice = fields.slice(.message) else { throw .badRequest("missing field 'message'") }
    guard slice.kind != .null else { throw .badRequest("field 'message' must not be null") }
    guard slice.range.count <= limits.maxMessageBytes else {
        throw PubSubError(
            .messageTooLarge,
            "message is \(slice.range.count) bytes; the limit is \(limits.maxMessageBytes)",
            context: ["limit": String(limits.maxMessageBytes)]
        )
    }
    // `{"id": "...", "payload": ...}`: the scan kept the last of each, building nothing.
    var id: String?
    var payload = slice
    if slice.kind == .object, let idValue = fields.slice(.messageID), idValue.kind == .string,
        let payloadValue = fields.slice(.messagePayload)
    {
        let text = try fields.string(of: idValue, named: .messageID)
        guard !text.isEmpty, text.utf8.count <= DecodingLimits.maxMessageIDLength else {
            throw .badRequest("message id must be 1 to \(DecodingLimits.maxMessageIDLength) characters")
        }
        id = text
        payload = payloadValue
    }
    // One return: two would each build a message, and the compiler copies one into place.
    return MessageInput(id: id, payload: fields.slice(of: payload))
}

/// The `request_id` to echo on the reply: set when it is a string of at most 128 characters
/// (even if the command then fails); anything else is a BAD_REQUEST answered without one.
/// Native frames and Phoenix payloads follow the same rule.
func decodeRequestID(_ fields: JSONFields, into requestID: inout String?) throws(PubSubError) {
    guard let slice = fields.slice(.requestID), slice.kind != .null else { return }
    guard let id = try? fields.string(of: slice, named: .requestID) else {
        throw .badRequest("field 'request_id' must be a string")
    }
    guard id.utf8.count <= DecodingLimits.maxRequestIDLength else {
        throw .badRequest("request_id is longer than \(DecodingLimits.maxRequestIDLength) characters")
    }
    requestID = id
}

/// Validates a topic name field; with `patterns`, a wildcard pattern too (SPEC 9: subscribe
/// and unsubscribe take one).
func decodeTopic(_ fields: JSONFields, patterns: Bool = false) throws(PubSubError) -> String {
    // A name spelled as in this thread's last frame that named one is that frame's String
    // again, checked then. A new one is checked as it is written between its quotes (bytes that
    // are all allowed in a name hold no escape) and becomes a String once. Anything else
    // (escapes, a bad character, the wrong type or length) goes the long way for its error.
    if let slice = fields.slice(.topic), slice.kind == .string {
        let text = fields.contents(of: slice)
        if let recent = RecentTopicName.matching(text) { return recent }
        if !text.isEmpty, text.count <= TopicName.maxLength, text.allSatisfy(TopicName.isAllowed) {
            return RecentTopicName.string(text)
        }
    }
    let topic = try fields.string(.topic, required: true)!
    if patterns && TopicPattern.isPattern(topic) {
        _ = try TopicPattern.validate(topic)
        return topic
    }
    try TopicName.validate(topic)
    return topic
}

/// `last_n` / `since` / `epoch` of a subscribe.
func decodeReplay(_ fields: JSONFields) throws(PubSubError) -> ReplayRequest {
    let lastN = try fields.uint(.lastN)
    let since = try fields.uint(.since)
    let epoch = try fields.string(.epoch)
    switch (lastN, since) {
    case (.some, .some):
        throw .badRequest("use either 'last_n' or 'since', not both")
    case (.some(let n), nil):
        return .lastN(Int(clamping: n))
    case (nil, .some(let s)):
        return .since(s, epoch: epoch)
    case (nil, nil):
        return .none
    }
}
