// The REST API's request bodies and query parameters. Byte 0 picks the mode (bits 0-1) and,
// for a publish, the path's topic (bits 2-3) and the message limit (bits 4-6); the rest is the
// body or the parameter's text.
//
// 0. RESTQuery.count / .sequence: accepted exactly when the text is 1 to 20 ASCII digits whose
//    value fits (Int / UInt64), and the value written in decimal is the text without its
//    leading zeros. The text is passed as a Substring in the middle of a longer string, as a
//    query string's parameter is.
// 1. RESTBodies.topicName: a returned name passes TopicName.validate, and the body was UTF-8.
// 2, 3. RESTBodies.publish: a returned topic passes TopicName.validate (and is the path's when
//    there is one), the message is within the byte limit with an id of 1 to 128 bytes, the
//    body was UTF-8; and the body read as a native publish frame (`"type":"publish",` put
//    first in its object) decodes to the same topic and message, or fails with the same code.
import FuzzSupport
import NIOCore
import PubSubCore
import PubSubProtocol

let pathTopics: [String?] = [nil, "t", "orders.eu-1", "bad name"]
let limitChoices = [0, 1, 2, 10, 100, 1000, 65_536, 65_536]

/// The value of 1 to 20 ASCII digits, or nil (not digits, or over UInt64.max).
func digitsValue(_ bytes: [UInt8]) -> UInt64? {
    guard (1...20).contains(bytes.count), bytes.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
    var value: UInt64 = 0
    for byte in bytes {
        let (times, o1) = value.multipliedReportingOverflow(by: 10)
        let (plus, o2) = times.addingReportingOverflow(UInt64(byte - 0x30))
        guard !o1, !o2 else { return nil }
        value = plus
    }
    return value
}

func query(_ bytes: [UInt8]) {
    let text = String(decoding: bytes, as: UTF8.self)
    let full = "?x=1&last_n=" + text + "&y=2"
    let utf8 = full.utf8
    let from = utf8.index(utf8.startIndex, offsetBy: 12)
    let to = utf8.index(from, offsetBy: text.utf8.count)
    let raw = Substring(full.utf8[from..<to])
    let digits = Array(text.utf8)
    require(Array(raw.utf8) == digits, "the substring is not the parameter's bytes")

    let expected = digitsValue(digits)
    let canonical = expected.map { String($0) }
    let stripped = String(decoding: digits.drop(while: { $0 == 0x30 }), as: UTF8.self)
    if let canonical { require(canonical == (stripped.isEmpty ? "0" : stripped), "value \(canonical) for \(text.debugDescription)") }

    switch Result(catching: { () throws(PubSubError) in try RESTQuery.sequence("since", raw) }) {
    case .success(let value):
        require(value != nil && value == expected, "since=\(text.debugDescription) accepted as \(String(describing: value))")
    case .failure(let error):
        require(expected == nil, "since=\(text.debugDescription) refused: \(error)")
        require(error.code == .badRequest, "since refused with \(error)")
    }
    let expectedCount = expected.flatMap { Int(exactly: $0) }
    switch Result(catching: { () throws(PubSubError) in try RESTQuery.count("last_n", raw) }) {
    case .success(let value):
        require(value != nil && value == expectedCount, "last_n=\(text.debugDescription) accepted as \(String(describing: value))")
    case .failure(let error):
        require(expectedCount == nil, "last_n=\(text.debugDescription) refused: \(error)")
        require(error.code == .badRequest, "last_n refused with \(error)")
    }
    require((try? RESTQuery.count("last_n", nil)) == .some(nil), "an absent last_n is not nil")
}

func isUTF8(_ bytes: [UInt8]) -> Bool { String(validating: bytes, as: UTF8.self) != nil }

func topicName(_ bytes: [UInt8]) {
    do throws(PubSubError) {
        let name = try RESTBodies.topicName(ByteBuffer(bytes: bytes))
        require((try? TopicName.validate(name)) != nil, "topic name \(name.debugDescription) accepted")
        require(isUTF8(bytes), "a body that is not UTF-8 accepted")
    } catch {
        require(error.code == .badRequest, "topicName threw \(error)")
    }
}

/// The body as a native publish frame: `"type":"publish",` first in its object.
func nativeFrame(_ bytes: [UInt8]) -> [UInt8]? {
    guard let open = bytes.firstIndex(where: { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }), bytes[open] == UInt8(ascii: "{") else {
        return nil
    }
    return Array(bytes[...open]) + Array(#""type":"publish","#.utf8) + Array(bytes[(open + 1)...])
}

func publish(_ bytes: [UInt8], options: UInt8) {
    let pathTopic = pathTopics[Int(options >> 2 & 3)]
    let limit = limitChoices[Int(options >> 4 & 7)]
    let rest = Result { () throws(PubSubError) in
        try RESTBodies.publish(ByteBuffer(bytes: bytes), topicFromPath: pathTopic, maxMessageBytes: limit)
    }
    switch rest {
    case .success(let (topic, message)):
        require((try? TopicName.validate(topic)) != nil, "topic \(topic.debugDescription) accepted")
        if let pathTopic { require(topic == pathTopic, "topic \(topic.debugDescription), path's \(pathTopic.debugDescription)") }
        checkMessage(message, maxBytes: limit)
        require(isUTF8(bytes), "a body that is not UTF-8 accepted")
    case .failure(let error):
        require(error.code == .badRequest || error.code == .messageTooLarge, "publish threw \(error)")
    }

    // The same members in a native frame decode the same (no `type` of the body's own to
    // override the one put in; the frame's UTF-8 is checked apart from the decoder).
    guard pathTopic == nil, isUTF8(bytes), !bytes.windowsContain(Array("type".utf8)), let frame = nativeFrame(bytes) else { return }
    let native = NativeCodec.decode(ByteBuffer(bytes: frame), limits: DecodingLimits(maxMessageBytes: limit)).command
    switch (rest, native) {
    case (.success(let (topic, message)), .success(let command)):
        let same = describe(.publish(topic: topic, message: message, ack: true))
        var got = describe(command)
        if case .publish(let t, let m, _) = command { got = describe(.publish(topic: t, message: m, ack: true)) }
        require(same == got, "REST: \(same)\nnative: \(got)")
    case (.failure(let a), .failure(let b)):
        require(a.code == b.code, "REST: \(a)\nnative: \(b)")
    default:
        require(false, "REST: \(rest.map { "\($0.topic) \($0.message.payload.bytes)" })\nnative: \(describe(native))")
    }
}

extension Array where Element == UInt8 {
    func windowsContain(_ needle: [UInt8]) -> Bool {
        guard count >= needle.count else { return false }
        return (0...(count - needle.count)).contains { self[$0..<($0 + needle.count)].elementsEqual(needle) }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    var input = FuzzInput(start, count)
    let options = input.byte()
    switch options & 3 {
    case 0: query(input.rest)
    case 1: topicName(input.rest)
    default: publish(input.rest, options: options)
    }
    return 0
}
