import NIOCore
import PubSubCore
import PubSubProtocol

/// Stops the run when an invariant does not hold: `fatalError` traps, and libFuzzer saves the
/// input as a `crash-…` file (and prints the message first).
@inline(__always)
public func require(
    _ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
    file: StaticString = #fileID, line: UInt = #line
) {
    if !condition() { fatalError("invariant failed: \(message())", file: file, line: line) }
}

/// The fuzzer's input, read from the front: a few bytes pick options (a version, a limit, where
/// reads are cut), the rest is the data under test. Reading past the end gives zeros, so every
/// input is usable.
public struct FuzzInput {
    public private(set) var bytes: UnsafeRawBufferPointer

    public init(_ start: UnsafeRawPointer, _ count: Int) {
        bytes = UnsafeRawBufferPointer(start: start, count: count)
    }

    public mutating func byte() -> UInt8 {
        guard let first = bytes.first else { return 0 }
        bytes = UnsafeRawBufferPointer(rebasing: bytes.dropFirst())
        return first
    }

    public mutating func uint16() -> UInt16 {
        UInt16(byte()) | UInt16(byte()) << 8
    }

    /// Everything not read yet.
    public var rest: [UInt8] { Array(bytes) }
}

/// The smallest power of two at least `value` (NIO rounds buffer capacities up to one).
public func nextPowerOfTwo(_ value: Int) -> Int {
    var power = 1
    while power < value { power <<= 1 }
    return power
}

extension ByteBuffer {
    /// The readable bytes as an array (for comparisons and messages).
    public var bytes: [UInt8] { Array(readableBytesView) }
}

// MARK: commands

/// A command as text that two decodes of the same request must agree on (payload bytes,
/// message id, topic, replay, ack).
public func describe(_ command: ClientCommand) -> String {
    switch command {
    case .subscribe(let topic, let replay, let presence):
        "subscribe(\(topic.debugDescription), \(String(reflecting: replay)), presence: \(presence))"
    case .unsubscribe(let topic): "unsubscribe(\(topic.debugDescription))"
    case .publish(let topic, let message, let ack):
        "publish(\(topic.debugDescription), id: \(String(reflecting: message.id)), payload: \(message.payload.bytes), ack: \(ack))"
    case .ping: "ping"
    case .refresh(let token): "refresh(\(token.debugDescription))"
    }
}

public func describe(_ result: Result<ClientCommand, PubSubError>) -> String {
    switch result {
    case .success(let command): "ok " + describe(command)
    case .failure(let error): "error " + error.description
    }
}

/// The invariants of any command the decoders accept: a topic that passes the name rules (or,
/// to subscribe and unsubscribe, a valid pattern: SPEC 9), a message id of 1 to 128 bytes, a
/// payload within the limit that is one JSON value.
public func checkDecoded(_ command: ClientCommand, requestID: String?, limits: DecodingLimits) {
    if let requestID {
        require(requestID.utf8.count <= DecodingLimits.maxRequestIDLength, "request_id of \(requestID.utf8.count) bytes")
    }
    switch command {
    case .subscribe(let topic, _, let presence):
        require(!presence || !TopicPattern.isPattern(topic), "presence accepted on the pattern \(topic.debugDescription)")
        checkSubscribable(topic)
    case .unsubscribe(let topic):
        checkSubscribable(topic)
    case .publish(let topic, let message, _):
        require((try? TopicName.validate(topic)) != nil, "accepted topic \(topic.debugDescription) fails TopicName.validate")
        checkMessage(message, maxBytes: limits.maxMessageBytes)
    case .ping:
        break
    case .refresh(let token):
        require(!token.isEmpty && token.utf8.count <= NativeCodec.maxTokenLength, "refresh token of \(token.utf8.count) bytes")
    }
}

/// A topic to subscribe or unsubscribe: a name that passes the name rules, or a valid pattern.
func checkSubscribable(_ topic: String) {
    if TopicPattern.isPattern(topic) {
        require(TopicPattern(topic) != nil, "accepted pattern \(topic.debugDescription) is not a TopicPattern")
    } else {
        require((try? TopicName.validate(topic)) != nil, "accepted topic \(topic.debugDescription) fails TopicName.validate")
    }
}

public func checkMessage(_ message: MessageInput, maxBytes: Int) {
    if let id = message.id {
        require(!id.isEmpty && id.utf8.count <= DecodingLimits.maxMessageIDLength, "message id of \(id.utf8.count) bytes")
    }
    require(message.payload.readableBytes > 0, "empty payload")
    require(message.payload.readableBytes <= maxBytes, "payload of \(message.payload.readableBytes) bytes over the limit \(maxBytes)")
}

/// Writes `command`'s members (as a native frame or a Phoenix payload has them) into the open
/// object `o`: the usual order (`type`, `topic`, `message`, `ack`, `request_id`: the publish
/// fast path's), or reversed (the general scan's).
public func writeMembers(
    _ command: ClientCommand, requestID: String?, type: Bool, reversed: Bool, into o: inout JSONWriter
) {
    var members: [(inout JSONWriter) -> Void] = []
    func typeMember(_ name: StaticString) {
        if type { members.append { $0.key("type"); $0.plainString(name.description) } }
    }
    switch command {
    case .subscribe(let topic, let replay, let presence):
        typeMember("subscribe")
        members.append { $0.member("topic", topic) }
        if presence { members.append { $0.member("presence", true) } }
        switch replay {
        case .none: break
        case .lastN(let n): members.append { $0.member("last_n", n) }
        case .since(let seq, let epoch):
            members.append { $0.member("since", seq) }
            if let epoch { members.append { $0.member("epoch", epoch) } }
        }
    case .unsubscribe(let topic):
        typeMember("unsubscribe")
        members.append { $0.member("topic", topic) }
    case .publish(let topic, let message, let ack):
        typeMember("publish")
        members.append { $0.member("topic", topic) }
        members.append { o in
            o.key("message")
            if let id = message.id {
                o.object { m in
                    m.member("id", id)
                    m.key("payload"); m.raw(message.payload)
                }
            } else {
                o.raw(message.payload)
            }
        }
        // The default is left out now and then (it decodes the same).
        if !ack || reversed { members.append { $0.member("ack", ack) } }
    case .ping:
        typeMember("ping")
    case .refresh(let token):
        typeMember("refresh")
        members.append { $0.member("token", token) }
    }
    if let requestID { members.append { $0.member("request_id", requestID) } }
    if reversed { members.reverse() }
    for member in members { member(&o) }
}

/// A native frame's text for `command`.
public func nativeText(_ command: ClientCommand, requestID: String?, reversed: Bool) -> ByteBuffer {
    var json = JSONWriter(frame: false)
    json.object { o in writeMembers(command, requestID: requestID, type: true, reversed: reversed, into: &o) }
    return json.finish()
}
