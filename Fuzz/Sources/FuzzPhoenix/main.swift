// PhoenixCodec.decode (Phoenix Channels serializers 1.0.0 and 2.0.0) on arbitrary bytes. The
// first input byte picks the version (even: 1.0.0 objects, odd: 2.0.0 arrays); the rest is the
// frame's text.
//
// Invariants:
// - never a crash;
// - `isASCII` true implies every byte is below 0x80;
// - a decoded request's refs are at most `PhoenixCodec.maxRefLength` characters of JSON text
//   (quotes aside), and are a JSON string or number as sent;
// - a decoded command passes the decoders' own rules (topic name, ids, payload size);
// - a decoded request written back by the codec's own writers decodes to the same topic and
//   event: as a push whose payload is the command's members (same command and request_id;
//   2.0.0: same join_ref), and as a reply (same ref; 2.0.0: same join_ref).
import FuzzSupport
import NIOCore
import PubSubCore
import PubSubProtocol

let limits = DecodingLimits()

/// The text of a frame the codec wrote (its writers return whole server frames).
func text(ofFrame frame: ByteBuffer) -> ByteBuffer { WebSocketFraming.payload(of: frame) }

func show(_ buffer: ByteBuffer?) -> String {
    buffer.map { String(decoding: $0.readableBytesView, as: UTF8.self) } ?? "nil"
}

func decodeAgain(_ frame: ByteBuffer, _ version: PhoenixVersion, _ what: String) -> PhoenixRequest {
    let text = text(ofFrame: frame)
    switch PhoenixCodec.decode(text, version: version, limits: DecodingLimits(maxMessageBytes: limits.maxMessageBytes * 2 + 1024)) {
    case .success(let request): return request
    case .failure(let error): fatalError("invariant failed: the codec's own \(what) does not decode: \(error)\n\(show(text))")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    var input = FuzzInput(start, count)
    let version: PhoenixVersion = input.byte() & 1 == 0 ? .v1 : .v2
    let bytes = input.rest
    let buffer = ByteBuffer(bytes: bytes)

    var isASCII = false
    let result = PhoenixCodec.decode(buffer, version: version, limits: limits, isASCII: &isASCII)
    if isASCII { require(bytes.allSatisfy { $0 < 0x80 }, "isASCII set for a text with a byte >= 0x80") }
    guard case .success(let request) = result else { return 0 }

    for (name, ref) in [("join_ref", request.joinRef), ("ref", request.ref)] {
        guard let ref else { continue }
        let raw = ref.bytes
        let quoted = raw.first == UInt8(ascii: "\"")
        require(
            quoted ? raw.count >= 2 && raw.last == UInt8(ascii: "\"") : raw.allSatisfy { Array("-+.eE0123456789".utf8).contains($0) },
            "\(name) \(show(ref)) is neither a string nor a number"
        )
        require(raw.count - (quoted ? 2 : 0) <= PhoenixCodec.maxRefLength, "\(name) of \(raw.count) bytes: \(show(ref))")
    }
    if case .success(let command) = request.command {
        checkDecoded(command, requestID: request.requestID, limits: limits)
    }

    // As a push with the command's members as payload.
    let push = PhoenixCodec.push(version, joinRef: request.joinRef, topic: request.topic, event: request.event) { p in
        p.object { o in
            if case .success(let command) = request.command {
                writeMembers(command, requestID: request.requestID, type: false, reversed: false, into: &o)
            }
        }
    }
    let pushed = decodeAgain(push, version, "push")
    require(pushed.topic == request.topic, "topic \(request.topic.debugDescription) came back \(pushed.topic.debugDescription)")
    require(pushed.event == request.event, "event \(request.event.debugDescription) came back \(pushed.event.debugDescription)")
    require(pushed.ref == nil, "a push has no ref")
    if version == .v2 { require(pushed.joinRef == request.joinRef, "join_ref \(show(request.joinRef)) came back \(show(pushed.joinRef))") }
    switch (request.command, pushed.command) {
    case (nil, nil): break
    case (.success(let command)?, let again?):
        require(
            describe(again) == describe(.success(command)) && pushed.requestID == request.requestID,
            "command \(describe(command)) / \(String(reflecting: request.requestID)) came back \(describe(again)) / \(String(reflecting: pushed.requestID))"
        )
    case (.failure?, _?): break  // the payload was written empty
    default: require(false, "a command event came back as another")
    }

    // As a reply to the request: the ref comes back.
    let reply = PhoenixCodec.reply(version, joinRef: request.joinRef, ref: request.ref, topic: request.topic, status: "ok") { o in
        o.object { _ in }
    }
    let replied = decodeAgain(reply, version, "reply")
    require(replied.topic == request.topic && replied.event == "phx_reply", "reply came back as \(replied.topic) / \(replied.event)")
    require(replied.ref == request.ref, "ref \(show(request.ref)) came back \(show(replied.ref))")
    if version == .v2 { require(replied.joinRef == request.joinRef, "join_ref \(show(request.joinRef)) came back \(show(replied.joinRef))") }
    return 0
}
