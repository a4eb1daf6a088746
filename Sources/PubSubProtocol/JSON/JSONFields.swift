import NIOCore
import PubSubCore

/// The member names the server reads out of client JSON (native frames, Phoenix messages and
/// their payloads, REST bodies). A scan keeps each one's value in its slot of a
/// ``JSONFieldTable`` as it passes, so reading a field is an index, not a search.
enum JSONKey: Int, CaseIterable {
    case type, topic, message, ack, requestID, lastN, since, epoch, name, token
    case joinRef, ref, event, payload, presence
    /// `id` and `payload` of a `message` object value (SPEC 2.1: `{"id": …, "payload": …}`).
    case messageID, messagePayload

    /// The member's name, for error messages.
    var name: StaticString {
        switch self {
        case .type: "type"
        case .topic: "topic"
        case .message: "message"
        case .ack: "ack"
        case .requestID: "request_id"
        case .lastN: "last_n"
        case .since: "since"
        case .epoch: "epoch"
        case .name: "name"
        case .token: "token"
        case .joinRef: "join_ref"
        case .ref: "ref"
        case .event: "event"
        case .payload: "payload"
        case .presence: "presence"
        case .messageID: "id"
        case .messagePayload: "payload"
        }
    }

    /// The key of an object's member named by the bytes `name` (its text), nil for names the
    /// server does not read. The length picks the candidates; each is compared, inline, with
    /// its ``name``.
    @inline(__always)
    init?(member name: UnsafeRawBufferPointer) {
        @inline(__always) func matches(_ key: JSONKey) -> Bool { JSONScanner.equal(name.baseAddress!, key.name) }
        switch name.count {
        case 3 where matches(.ack): self = .ack
        case 3 where matches(.ref): self = .ref
        case 4 where matches(.type): self = .type
        case 4 where matches(.name): self = .name
        case 5 where matches(.topic): self = .topic
        case 5 where matches(.since): self = .since
        case 5 where matches(.epoch): self = .epoch
        case 5 where matches(.token): self = .token
        case 5 where matches(.event): self = .event
        case 6 where matches(.lastN): self = .lastN
        case 7 where matches(.message): self = .message
        case 7 where matches(.payload): self = .payload
        case 8 where matches(.joinRef): self = .joinRef
        case 8 where matches(.presence): self = .presence
        case 10 where matches(.requestID): self = .requestID
        default: return nil
        }
    }

    /// The key of a `message` object's member named `name`: `id` or `payload`.
    @inline(__always)
    init?(messageMember name: UnsafeRawBufferPointer) {
        switch name.count {
        case 2 where JSONScanner.equal(name.baseAddress!, JSONKey.messageID.name): self = .messageID
        case 7 where JSONScanner.equal(name.baseAddress!, JSONKey.messagePayload.name): self = .messagePayload
        default: return nil
        }
    }
}

/// The values of an object's members that have a ``JSONKey``, filled by one scan
/// (``JSONScanner/topLevelObject(into:)``). Duplicates: the last wins, as in most JSON parsers.
/// `messageID` and `messagePayload` are those of the last `message` member, when it is an
/// object.
struct JSONFieldTable {
    /// One slot per ``JSONKey``: an inline array's size is a literal, so a test checks that
    /// ``capacity`` is `JSONKey.allCases.count`.
    private typealias Slots = InlineArray<17, JSONSlice?>
    private var values = Slots(repeating: nil)
    static var capacity: Int { Slots.count }

    subscript(key: JSONKey) -> JSONSlice? {
        @inline(__always) get { values[key.rawValue] }
        @inline(__always) set { values[key.rawValue] = newValue }
    }
}

/// Reading the fields the server needs out of a scanned JSON object.
///
/// It points at the table rather than holding it: the table is hundreds of bytes, and every call that
/// took a `JSONFields` by value copied it. Valid only inside the scope that lent the table
/// (``withJSONObject(_:_:)``'s body, ``withFields(_:bytes:buffer:_:)``).
struct JSONFields {
    private let table: UnsafePointer<JSONFieldTable>
    let bytes: UnsafeRawBufferPointer
    /// The buffer `bytes` belongs to, for slices of it.
    let buffer: ByteBuffer

    /// The value of the member `key` (the last, for duplicates).
    @inline(__always)
    func slice(_ key: JSONKey) -> JSONSlice? { table.pointee[key] }

    /// Lends `body` the fields of `table`, read from `bytes` (part of `buffer`).
    static func withFields<T>(
        _ table: inout JSONFieldTable, bytes: UnsafeRawBufferPointer, buffer: ByteBuffer,
        _ body: (JSONFields) throws(PubSubError) -> T
    ) throws(PubSubError) -> T {
        try withUnsafePointer(to: &table) { table throws(PubSubError) in
            try body(JSONFields(table: table, bytes: bytes, buffer: buffer))
        }
    }

    /// The bytes between a string value's quotes when they are its text (no escapes), so it
    /// can be compared or checked without building a `String`.
    func plainText(of slice: JSONSlice) -> UnsafeRawBufferPointer? {
        guard slice.kind == .string else { return nil }
        let inner = contents(of: slice)
        return inner.contains(UInt8(ascii: "\\")) ? nil : inner
    }

    /// The bytes between a string value's quotes, as written (escapes not resolved).
    func contents(of string: JSONSlice) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: bytes[(string.range.lowerBound + 1)..<(string.range.upperBound - 1)])
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

    func string(_ key: JSONKey, required: Bool = false) throws(PubSubError) -> String? {
        guard let slice = slice(key), slice.kind != .null || required else {
            if required { throw .badRequest("missing field '\(key.name)'") }
            return nil
        }
        return try string(of: slice, named: key)
    }

    /// The text of the string value `slice` (of the field `key`, for errors).
    func string(of slice: JSONSlice, named key: JSONKey) throws(PubSubError) -> String {
        guard slice.kind == .string else { throw .badRequest("field '\(key.name)' must be a string") }
        do throws(JSONError) {
            return try JSONScanner.decodeString(contents(of: slice))
        } catch {
            throw .badRequest("field '\(key.name)': \(error.description)")
        }
    }

    func uint(_ key: JSONKey) throws(PubSubError) -> UInt64? {
        guard let slice = slice(key), slice.kind != .null else { return nil }
        guard slice.kind == .number, let value = JSONScanner.decodeUInt(raw(slice)) else {
            throw .badRequest("field '\(key.name)' must be a non-negative integer")
        }
        return value
    }

    func bool(_ key: JSONKey) throws(PubSubError) -> Bool? {
        guard let slice = slice(key), slice.kind != .null else { return nil }
        guard slice.kind == .bool else { throw .badRequest("field '\(key.name)' must be true or false") }
        return bytes[slice.range.lowerBound] == UInt8(ascii: "t")
    }
}

/// Parses a JSON object and hands its fields to `body`. Invalid JSON is a BAD_REQUEST.
///
/// One pass fills a table of the fields the server reads, on the stack: a publish frame is
/// scanned once and costs no allocation to decode.
func withJSONObject<T>(
    _ buffer: ByteBuffer, _ body: (JSONFields) throws(PubSubError) -> T
) throws(PubSubError) -> T {
    var isASCII = false
    return try withJSONObject(buffer, isASCII: &isASCII, body)
}

/// ``withJSONObject(_:_:)``, setting `isASCII` when the object scanned and all its bytes are
/// ASCII (then they are valid UTF-8: the scan saw every one).
func withJSONObject<T>(
    _ buffer: ByteBuffer, isASCII: inout Bool, _ body: (JSONFields) throws(PubSubError) -> T
) throws(PubSubError) -> T {
    let result: Result<T, PubSubError> = buffer.withUnsafeReadableBytes { bytes in
        var table = JSONFieldTable()
        var scanner = JSONScanner(bytes)
        do throws(JSONError) {
            try scanner.topLevelObject(into: &table)
        } catch {
            return .failure(.badRequest(error.description))
        }
        isASCII = scanner.isASCII
        do throws(PubSubError) {
            return .success(try JSONFields.withFields(&table, bytes: bytes, buffer: buffer, body))
        } catch {
            return .failure(error)
        }
    }
    // Consumed, so the value moves out instead of being copied from the result.
    switch consume result {
    case .success(let value): return value
    case .failure(let error): throw error
    }
}
