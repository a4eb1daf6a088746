import NIOCore
import PubSubCore

/// A decoded client request of the native protocol (SPEC 2.1), wire-format independent, so
/// the Phoenix codec can produce the same commands.
public enum ClientCommand: Sendable {
    case subscribe(topic: String, replay: ReplayRequest)
    case unsubscribe(topic: String)
    case publish(topic: String, message: MessageInput, ack: Bool)
    case ping
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

/// Reading the fields the server needs out of a parsed JSON object.
struct JSONFields {
    let members: [JSONMember]
    let bytes: UnsafeRawBufferPointer
    /// The buffer `bytes` belongs to, for slices of it.
    let buffer: ByteBuffer

    /// The value of the last member named `key` (duplicates: the last wins).
    func slice(_ key: StaticString) -> JSONSlice? {
        var index = members.count
        while index > 0 {
            index -= 1
            if Self.name(of: members[index], in: bytes, is: key) { return members[index].value }
        }
        return nil
    }

    /// Compares a member's name with `key` by bytes (decoded only if it has escapes).
    static func name(of member: JSONMember, in bytes: UnsafeRawBufferPointer, is key: StaticString) -> Bool {
        let count = key.utf8CodeUnitCount
        if member.nameHasEscapes {
            let raw = UnsafeRawBufferPointer(rebasing: bytes[member.name])
            return (try? JSONScanner.decodeString(raw)) == key.description
        }
        guard member.name.count == count else { return false }
        let name = bytes.baseAddress! + member.name.lowerBound
        let literal = key.utf8Start
        for offset in 0..<count where name.load(fromByteOffset: offset, as: UInt8.self) != literal[offset] {
            return false
        }
        return true
    }

    func raw(_ slice: JSONSlice) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[slice.range])
    }

    /// A value's JSON text as a slice of the frame, no copy. Only for what the broker keeps
    /// briefly: a message payload (the topic keeps a slice of the encoded event or its own
    /// copy, never the frame's buffer).
    func slice(of value: JSONSlice) -> ByteBuffer {
        buffer.getSlice(at: buffer.readerIndex + value.range.lowerBound, length: value.range.count)!
    }

    /// Copies a value's JSON text into its own buffer (not a slice of the input frame, which
    /// would keep the whole read buffer alive in history).
    func copy(_ slice: JSONSlice) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: slice.range.count)
        buffer.writeBytes(raw(slice))
        return buffer
    }

    func string(_ key: StaticString, required: Bool = false) throws(PubSubError) -> String? {
        guard let slice = slice(key), slice.kind != .null || required else {
            if required { throw .badRequest("missing field '\(key)'") }
            return nil
        }
        return try string(of: slice, named: key)
    }

    /// The text of the string value `slice` (of the field `key`, for errors).
    func string(of slice: JSONSlice, named key: StaticString) throws(PubSubError) -> String {
        guard slice.kind == .string else { throw .badRequest("field '\(key)' must be a string") }
        let inner = UnsafeRawBufferPointer(rebasing: bytes[(slice.range.lowerBound + 1)..<(slice.range.upperBound - 1)])
        do throws(JSONError) {
            return try JSONScanner.decodeString(inner)
        } catch {
            throw .badRequest("field '\(key)': \(error.description)")
        }
    }

    func uint(_ key: StaticString) throws(PubSubError) -> UInt64? {
        guard let slice = slice(key), slice.kind != .null else { return nil }
        guard slice.kind == .number, let value = JSONScanner.decodeUInt(raw(slice)) else {
            throw .badRequest("field '\(key)' must be a non-negative integer")
        }
        return value
    }

    func bool(_ key: StaticString) throws(PubSubError) -> Bool? {
        guard let slice = slice(key), slice.kind != .null else { return nil }
        guard slice.kind == .bool else { throw .badRequest("field '\(key)' must be true or false") }
        return bytes[slice.range.lowerBound] == UInt8(ascii: "t")
    }
}

/// Parses a JSON object and hands its fields to `body`. Invalid JSON is a BAD_REQUEST.
func withJSONObject<T>(
    _ buffer: ByteBuffer, _ body: (JSONFields) throws(PubSubError) -> T
) throws(PubSubError) -> T {
    let result: Result<T, PubSubError> = buffer.withUnsafeReadableBytes { bytes in
        var scanner = JSONScanner(bytes)
        let members: [JSONMember]
        do throws(JSONError) {
            members = try scanner.topLevelObject()
        } catch {
            return .failure(.badRequest(error.description))
        }
        do throws(PubSubError) {
            return .success(try body(JSONFields(members: members, bytes: bytes, buffer: buffer)))
        } catch {
            return .failure(error)
        }
    }
    return try result.get()
}

/// The `message` member of a publish: `{"id": "...", "payload": ...}` keeps its id, any other
/// JSON value is the whole payload and gets a generated id (SPEC 2.1).
func decodeMessage(_ fields: JSONFields, limits: DecodingLimits) throws(PubSubError) -> MessageInput {
    guard let slice = fields.slice("message") else { throw .badRequest("missing field 'message'") }
    guard slice.kind != .null else { throw .badRequest("field 'message' must not be null") }
    guard slice.range.count <= limits.maxMessageBytes else {
        throw PubSubError(
            .messageTooLarge,
            "message is \(slice.range.count) bytes; the limit is \(limits.maxMessageBytes)",
            context: ["limit": String(limits.maxMessageBytes)]
        )
    }
    if slice.kind == .object {
        // `{"id": "...", "payload": ...}`: found in one pass over the members, building nothing.
        var idValue: JSONSlice?
        var payload: JSONSlice?
        let bytes = fields.bytes
        do throws(JSONError) {
            try JSONScanner.forEachMember(of: slice, in: bytes) { member in
                if JSONFields.name(of: member, in: bytes, is: "id") {
                    idValue = member.value
                } else if JSONFields.name(of: member, in: bytes, is: "payload") {
                    payload = member.value
                }
            }
        } catch {
            throw .badRequest(error.description)
        }
        if let idValue, idValue.kind == .string, let payload {
            let id = try fields.string(of: idValue, named: "id")
            guard !id.isEmpty, id.utf8.count <= DecodingLimits.maxMessageIDLength else {
                throw .badRequest("message id must be 1 to \(DecodingLimits.maxMessageIDLength) characters")
            }
            return MessageInput(id: id, payload: fields.slice(of: payload))
        }
    }
    return MessageInput(id: nil, payload: fields.slice(of: slice))
}

/// Validates a topic name field.
func decodeTopic(_ fields: JSONFields) throws(PubSubError) -> String {
    let topic = try fields.string("topic", required: true)!
    try TopicName.validate(topic)
    return topic
}

/// `last_n` / `since` / `epoch` of a subscribe.
func decodeReplay(_ fields: JSONFields) throws(PubSubError) -> ReplayRequest {
    let lastN = try fields.uint("last_n")
    let since = try fields.uint("since")
    let epoch = try fields.string("epoch")
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
