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
    let members: UnsafeBufferPointer<JSONMember>
    /// The `id` and `payload` members of `message` objects, found by the same scan (see
    /// ``withJSONObject(_:_:)``); nil when they were not collected.
    var messageMembers: UnsafeBufferPointer<JSONMember>? = nil
    let bytes: UnsafeRawBufferPointer
    /// The buffer `bytes` belongs to, for slices of it.
    let buffer: ByteBuffer

    /// The value of the last member named `key` (duplicates: the last wins).
    func slice(_ key: StaticString) -> JSONSlice? {
        var index = members.count
        while index > 0 {
            index -= 1
            if JSONScanner.name(of: members[index], in: bytes, is: key) { return members[index].value }
        }
        return nil
    }

    /// The bytes between a string value's quotes when they are its text (no escapes), so it
    /// can be compared or checked without building a `String`.
    func plainText(of slice: JSONSlice) -> UnsafeRawBufferPointer? {
        guard slice.kind == .string else { return nil }
        let inner = UnsafeRawBufferPointer(rebasing: bytes[(slice.range.lowerBound + 1)..<(slice.range.upperBound - 1)])
        return inner.contains(UInt8(ascii: "\\")) ? nil : inner
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
///
/// The members are collected on the stack (an array only for objects with more than 16), and
/// the `id` and `payload` members of a `message` object in the same pass, so a publish frame
/// is scanned once and costs no allocation to decode.
func withJSONObject<T>(
    _ buffer: ByteBuffer, _ body: (JSONFields) throws(PubSubError) -> T
) throws(PubSubError) -> T {
    let result: Result<T, PubSubError> = buffer.withUnsafeReadableBytes { bytes in
        func run(_ fields: JSONFields) -> Result<T, PubSubError> {
            do throws(PubSubError) {
                return .success(try body(fields))
            } catch {
                return .failure(error)
            }
        }
        return withUnsafeTemporaryAllocation(of: JSONMember.self, capacity: 16) { top in
            withUnsafeTemporaryAllocation(of: JSONMember.self, capacity: 4) { inner in
                var members = MemberCollector(top)
                var messageMembers = MemberCollector(inner)
                var scanner = JSONScanner(bytes)
                do throws(JSONError) {
                    try scanner.topLevelObject(descendingInto: "message", { members.append($0) }) { member in
                        if JSONScanner.name(of: member, in: bytes, is: "id") || JSONScanner.name(of: member, in: bytes, is: "payload") {
                            messageMembers.append(member)
                        }
                    }
                } catch {
                    return .failure(.badRequest(error.description))
                }
                if members.overflowed {
                    // A valid object with many members: collect them again, into an array.
                    var again = JSONScanner(bytes)
                    guard let all = try? again.topLevelObject() else { return .failure(.badRequest("invalid JSON")) }
                    return all.withUnsafeBufferPointer { run(JSONFields(members: $0, bytes: bytes, buffer: buffer)) }
                }
                return run(
                    JSONFields(
                        members: members.members, messageMembers: messageMembers.overflowed ? nil : messageMembers.members,
                        bytes: bytes, buffer: buffer
                    )
                )
            }
        }
    }
    // Consumed, so the value moves out instead of being copied from the result.
    switch consume result {
    case .success(let value): return value
    case .failure(let error): throw error
    }
}

/// Members collected into fixed storage lent by the caller; `overflowed` once more came than fit.
private struct MemberCollector {
    let storage: UnsafeMutableBufferPointer<JSONMember>
    private(set) var count = 0
    private(set) var overflowed = false

    init(_ storage: UnsafeMutableBufferPointer<JSONMember>) { self.storage = storage }

    @inline(__always)
    mutating func append(_ member: JSONMember) {
        guard count < storage.count else {
            overflowed = true
            return
        }
        storage.initializeElement(at: count, to: member)
        count += 1
    }

    var members: UnsafeBufferPointer<JSONMember> { UnsafeBufferPointer(rebasing: storage[..<count]) }
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
        // `{"id": "...", "payload": ...}`: the last of each, building nothing.
        var idValue: JSONSlice?
        var payload: JSONSlice?
        let bytes = fields.bytes
        func look(at member: JSONMember) {
            if JSONScanner.name(of: member, in: bytes, is: "id") {
                idValue = member.value
            } else if JSONScanner.name(of: member, in: bytes, is: "payload") {
                payload = member.value
            }
        }
        if let collected = fields.messageMembers {
            // Collected by the scan from every `message` object: this one's lie inside it.
            for member in collected where slice.range.contains(member.name.lowerBound) { look(at: member) }
        } else {
            do throws(JSONError) {
                try JSONScanner.forEachMember(of: slice, in: bytes, look)
            } catch {
                throw .badRequest(error.description)
            }
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

/// The `request_id` to echo on the reply: set when it is a string of at most 128 characters
/// (even if the command then fails); anything else is a BAD_REQUEST answered without one.
/// Native frames and Phoenix payloads follow the same rule.
func decodeRequestID(_ fields: JSONFields, into requestID: inout String?) throws(PubSubError) {
    guard let slice = fields.slice("request_id"), slice.kind != .null else { return }
    guard let id = try? fields.string(of: slice, named: "request_id") else {
        throw .badRequest("field 'request_id' must be a string")
    }
    guard id.utf8.count <= DecodingLimits.maxRequestIDLength else {
        throw .badRequest("request_id is longer than \(DecodingLimits.maxRequestIDLength) characters")
    }
    requestID = id
}

/// Validates a topic name field.
func decodeTopic(_ fields: JSONFields) throws(PubSubError) -> String {
    // The usual name is checked as bytes and becomes a String once; anything else (escapes,
    // a bad character, the wrong type or length) goes the long way for its error.
    if let slice = fields.slice("topic"), let text = fields.plainText(of: slice), !text.isEmpty,
        text.count <= TopicName.maxLength, text.allSatisfy(TopicName.isAllowed)
    {
        return String(decoding: text, as: UTF8.self)
    }
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
