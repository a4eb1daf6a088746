import BrokerContract
import Foundation
import NIOCore
import Testing

@testable import PubSubCore
@testable import PubSubProtocol

@Suite("Native codec: decoding")
struct NativeDecodingTests {
    func decode(_ text: String, max: Int = 65_536) -> ClientRequest {
        NativeCodec.decode(ByteBuffer(string: text), limits: DecodingLimits(maxMessageBytes: max))
    }

    @Test func decodesEveryCommand() throws {
        guard case .subscribe("t", .lastN(5), false) = try decode(#"{"type":"subscribe","topic":"t","last_n":5}"#).command.get() else {
            Issue.record("subscribe"); return
        }
        guard case .subscribe("t", .since(41, epoch: "e"), false) = try decode(#"{"type":"subscribe","topic":"t","since":41,"epoch":"e"}"#).command.get() else {
            Issue.record("since"); return
        }
        guard case .subscribe("t", .none, true) = try decode(#"{"type":"subscribe","topic":"t","presence":true}"#).command.get() else {
            Issue.record("presence"); return
        }
        guard case .subscribe("t", .none, false) = try decode(#"{"type":"subscribe","topic":"t","presence":null}"#).command.get() else {
            Issue.record("presence null"); return
        }
        #expect(throws: PubSubError.self) { try decode(#"{"type":"subscribe","topic":"t","presence":1}"#).command.get() }
        guard case .unsubscribe("t") = try decode(#"{"type":"unsubscribe","topic":"t"}"#).command.get() else {
            Issue.record("unsubscribe"); return
        }
        guard case .ping = try decode(#" { "type" : "ping" } "#).command.get() else { Issue.record("ping"); return }
        let request = decode(#"{"type":"publish","topic":"t","message":{"id":"m1","payload":{"a":[1,2.5e3,"\u00e9"]}},"ack":false,"request_id":"r"}"#)
        #expect(request.requestID == "r")
        guard case .publish("t", let message, false) = try request.command.get() else { Issue.record("publish"); return }
        #expect(message.id == "m1")
        #expect(String(buffer: message.payload) == #"{"a":[1,2.5e3,"\u00e9"]}"#)
        guard case .publish(_, let bare, true) = try decode(#"{"type":"publish","topic":"t","message":{"id":5,"payload":1}}"#).command.get() else {
            Issue.record("bare"); return
        }
        #expect(bare.id == nil)
        #expect(String(buffer: bare.payload) == #"{"id":5,"payload":1}"#)
    }

    /// A publish is decoded in one scan: each member the server reads is kept in its slot of a
    /// table as it passes, the `message` object's `id` and `payload` found while validating it,
    /// the type and topic read as bytes. Whatever the frame's shape, that must give what reading
    /// it member by member gives.
    @Test func oneScanDecodingAgreesWithTheRules() throws {
        func publish(_ text: String) throws -> (topic: String, id: String?, payload: String) {
            guard case .publish(let topic, let message, _) = try decode(text).command.get() else {
                Issue.record("not a publish: \(text)")
                return ("", nil, "")
            }
            return (topic, message.id, String(buffer: message.payload))
        }
        // Duplicate `message` members: the last wins, and an earlier one's id does not leak into it.
        var decoded = try publish(#"{"type":"publish","topic":"t","message":{"id":"old","payload":1},"message":{"payload":2,"id":"new"}}"#)
        #expect(decoded.id == "new" && decoded.payload == "2")
        decoded = try publish(#"{"type":"publish","topic":"t","message":{"id":"a","payload":1},"message":{"x":1}}"#)
        #expect(decoded.id == nil && decoded.payload == #"{"x":1}"#)
        // Many `id`s and `payload`s: the last of each wins.
        let ids = (1...6).map { #""id":"\#($0)""# }.joined(separator: ",")
        decoded = try publish(#"{"type":"publish","topic":"t","message":{\#(ids),"payload":3,"payload":4}}"#)
        #expect(decoded.id == "6" && decoded.payload == "4")
        // Many members the server does not read, before the ones it does.
        let extra = (1...20).map { #""x\#($0)":\#($0)"# }.joined(separator: ",")
        decoded = try publish(#"{\#(extra),"type":"publish","topic":"t","message":{"id":"m","payload":[1]}}"#)
        #expect(decoded.topic == "t" && decoded.id == "m" && decoded.payload == "[1]")
        // Only the top level's `message` is looked into: the same names deeper down are not it.
        decoded = try publish(#"{"type":"publish","topic":"t","x":{"message":{"id":"deep","payload":0}},"message":{"payload":5}}"#)
        #expect(decoded.id == nil && decoded.payload == #"{"payload":5}"#)
        decoded = try publish(#"{"type":"publish","topic":"t","message":{"id":"m","payload":{"id":"inner","payload":1}}}"#)
        #expect(decoded.id == "m" && decoded.payload == #"{"id":"inner","payload":1}"#)
        // Escaped names and values take the long way to the same result.
        decoded = try publish(#"{"typ\u0065":"pub\u006cish","topic":"t\u0031","mess\u0061ge":{"\u0069d":"e","payload":true}}"#)
        #expect(decoded.topic == "t1" && decoded.id == "e" && decoded.payload == "true")
        // A topic checked as bytes is still held to the rules, with the rules' message.
        guard case .failure(let error) = decode(#"{"type":"publish","topic":"a/b","message":1}"#).command else {
            Issue.record("accepted a/b"); return
        }
        #expect(error.code == .badRequest && error.message.contains("may only contain"))
        // The message object looked into is held to the same nesting limit.
        let deep = String(repeating: #"{"a":"#, count: 200) + "1" + String(repeating: "}", count: 200)
        guard case .failure = decode(#"{"type":"publish","topic":"t","message":\#(deep)}"#).command else {
            Issue.record("accepted deep object"); return
        }
    }

    /// Each key is recognised by its own name (top-level keys as members, `id` and `payload`
    /// as a `message` object's), nothing else is, and the table has a slot for every key.
    @Test func everyKeyIsRecognisedByItsName() {
        func bytes(_ text: StaticString) -> UnsafeRawBufferPointer {
            UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount)
        }
        for key in JSONKey.allCases {
            switch key {
            case .messageID, .messagePayload:
                #expect(JSONKey(messageMember: bytes(key.name)) == key)
            default:
                #expect(JSONKey(member: bytes(key.name)) == key, "\(key)")
            }
        }
        for other: StaticString in ["id", "typ", "types", "Topic", "request-id", "x"] {
            #expect(JSONKey(member: bytes(other)) == nil, "\(other)")
        }
        #expect(JSONKey(messageMember: bytes("type")) == nil)
        #expect(JSONFieldTable.capacity == JSONKey.allCases.count)
    }

    @Test(arguments: [
        "", "[]", "{", #"{"type":"ping"} x"#, #"{"type":"nope"}"#, #"{"type":1}"#, #"{"topic":"t"}"#,
        #"{"type":"subscribe","topic":"a b"}"#, #"{"type":"subscribe","topic":"t","last_n":1.5}"#,
        #"{"type":"publish","topic":"t"}"#, #"{"type":"publish","topic":"t","message":null}"#,
        #"{"type":"publish","topic":"t","message":tru}"#, #"{"type":"ping","request_id":7}"#,
        "{\"type\":\"ping\",\"x\":\"a\u{01}\"}", #"{"type":"ping","x":"\q"}"#, #"{"type":"ping","x":01}"#,
        // Literals are compared as words: each near miss, and each cut short by the input's end.
        #"{"type":"ping","x":trUe}"#, #"{"type":"ping","x":falsy}"#, #"{"type":"ping","x":nul}"#, #"{"type":"ping","x":fals"#,
        #"{"type":"ping","x":t"#, #"{"type":"ping","x":nulll}"#, #"{"type":"ping","x":False}"#,
    ])
    func rejectsBadInput(_ text: String) {
        let request = decode(text)
        guard case .failure(let error) = request.command else {
            Issue.record("accepted \(text)"); return
        }
        #expect(error.code == .badRequest)
    }

    @Test func literalsAnywhere() throws {
        for (text, ack) in [("true", true), ("false", false), ("null", true)] {
            let request = decode(#"{"type":"publish","topic":"t","message":[\#(text),{"a":\#(text)}],"ack":\#(text)}"#)
            guard case .publish(_, let message, let decodedAck) = try request.command.get() else { Issue.record("publish"); return }
            #expect(String(buffer: message.payload) == "[\(text),{\"a\":\(text)}]")
            #expect(decodedAck == ack, "\(text)")
        }
    }

    /// The string scanner skips 8 bytes at a time: special characters at every offset of a
    /// chunk must still be seen.
    @Test func specialCharactersAtEveryOffset() throws {
        for position in 0..<24 {
            var chars = Array(repeating: "a", count: 24)
            chars[position] = "\\\""
            let escaped = chars.joined()
            let request = decode(#"{"type":"publish","topic":"t","message":"\#(escaped)"}"#)
            guard case .publish(_, let message, _) = try request.command.get() else { Issue.record("publish"); return }
            #expect(String(buffer: message.payload) == "\"\(escaped)\"")

            var control = Array(repeating: UInt8(ascii: "a"), count: 24)
            control[position] = 0x01
            let raw = Array(#"{"type":"ping","x":""#.utf8) + control + Array(#""}"#.utf8)
            guard case .failure = NativeCodec.decode(ByteBuffer(bytes: raw), limits: DecodingLimits()).command else {
                Issue.record("control character at \(position) accepted"); return
            }
        }
    }

    /// The scan reports a text all of ASCII (valid UTF-8 with no check) only when it is: one
    /// byte of 0x80 or more anywhere in a key or a string value, at every offset of the 8-byte
    /// steps and in the last bytes of the input, is seen.
    @Test func nonASCIIBytesAnywhereAreSeen() {
        func scan(_ bytes: [UInt8]) -> (decoded: Bool, isASCII: Bool) {
            var requestID: String?
            var isASCII = false
            let result = NativeCodec.decode(ByteBuffer(bytes: bytes), limits: DecodingLimits(), requestID: &requestID, isASCII: &isASCII)
            if case .success = result { return (true, isASCII) }
            return (false, isASCII)
        }
        let head = Array(#"{"type":"ping","#.utf8)
        for length in 1..<28 {
            for position in 0..<length {
                for high: [UInt8] in [[0xC3, 0xA9], [0xFF], [0x80]] {  // é, and bytes no UTF-8 has
                    var text = Array(repeating: UInt8(ascii: "a"), count: length)
                    text.replaceSubrange(position..<(position + 1), with: high)
                    let quoted = [UInt8(ascii: "\"")] + text + [UInt8(ascii: "\"")]
                    // As a value (last in the object, so near the input's end), and as a key.
                    let asValue = scan(head + Array(#""x":"#.utf8) + quoted + [UInt8(ascii: "}")])
                    let asKey = scan(head + quoted + Array(#":1}"#.utf8))
                    #expect(asValue == (true, false), "value of \(length), \(high) at \(position)")
                    #expect(asKey == (true, false), "key of \(length), \(high) at \(position)")
                }
            }
            let plain = Array(repeating: UInt8(ascii: "a"), count: length)
            #expect(scan(head + Array(#""x":""#.utf8) + plain + Array(#""}"#.utf8)) == (true, true))
        }
        // Outside strings such a byte fails the scan, which then says nothing.
        #expect(scan(head + Array(#""x":1"#.utf8) + [0xC3, 0xA9] + [UInt8(ascii: "}")]).decoded == false)
        // Escapes are ASCII as written (what they stand for is checked when decoded).
        #expect(scan(Array(#"{"type":"ping","x":"\u00e9\n"}"#.utf8)) == (true, true))
    }

    @Test func messageLimit() {
        guard case .failure(let error) = decode(#"{"type":"publish","topic":"t","message":"\#(String(repeating: "x", count: 100))"}"#, max: 50).command else {
            Issue.record("accepted"); return
        }
        #expect(error.code == .messageTooLarge)
    }

    @Test func requestIDIsKeptOnErrors() {
        #expect(decode(#"{"type":"subscribe","request_id":"abc"}"#).requestID == "abc")
    }

    /// A Phoenix payload's `request_id` follows the native rule: a string of at most 128
    /// characters, echoed; anything else refuses the command and is not echoed.
    @Test(arguments: [(#""r1""#, true), ("7", false), ("\"" + String(repeating: "x", count: 129) + "\"", false)])
    func phoenixRequestIDFollowsTheNativeRule(_ requestID: String, accepted: Bool) throws {
        let frame = #"["1","2","pubsub","ping",{"request_id":\#(requestID)}]"#
        let request = try PhoenixCodec.decode(ByteBuffer(string: frame), version: .v2, limits: DecodingLimits()).get()
        if accepted {
            #expect(request.requestID == "r1")
            guard case .success(.ping) = request.command else { Issue.record("ping refused"); return }
        } else {
            #expect(request.requestID == nil)
            guard case .failure(let error) = request.command else { Issue.record("accepted \(requestID)"); return }
            #expect(error.code == .badRequest)
        }
    }

    @Test func deepNestingIsRejectedNotCrashed() {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        guard case .failure = decode(#"{"type":"publish","topic":"t","message":\#(deep)}"#).command else {
            Issue.record("accepted"); return
        }
    }


    /// A long topic name named again is the same `String` (no new one per frame), and only for
    /// the very same bytes: any other name, escaped spelling or bad name is decoded on its own.
    @Test func longTopicNamesAreReusedOnlyForTheSameBytes() throws {
        func topic(_ name: String, type: String = "publish") throws -> String {
            let extra = type == "publish" ? #","message":1"# : ""
            switch try decode(#"{"type":"\#(type)","topic":"\#(name)"\#(extra)}"#).command.get() {
            case .publish(let topic, _, _), .subscribe(let topic, _, _), .unsubscribe(let topic): return topic
            case .ping, .refresh: return ""
            }
        }
        func storage(_ string: String) -> UnsafeRawPointer? {
            var string = string
            return string.withUTF8 { UnsafeRawPointer($0.baseAddress) }
        }
        let long = "orders.eu-west-1.created"  // 24 bytes: not a small string
        let first = try topic(long)
        let again = try topic(long)
        #expect(first == long && again == long)
        #expect(storage(first) == storage(again), "the second frame built a String of its own")
        // A subscribe names it too.
        #expect(storage(try topic(long, type: "subscribe")) == storage(first))
        // Same length, one byte apart; longer and shorter by a byte; escaped; not a name at all.
        #expect(try topic("orders.eu-west-2.created") == "orders.eu-west-2.created")
        _ = try topic(long)
        #expect(try topic(long + "x") == long + "x")
        _ = try topic(long)
        #expect(try topic(String(long.dropLast())) == String(long.dropLast()))
        _ = try topic(long)
        #expect(try topic(#"orders.eu-west-1.created"#) == long)
        _ = try topic(long)
        for bad in ["orders.eu west-1.created", "orders.eu-west-1.create\\\\", String(repeating: "a", count: 256)] {
            guard case .failure(let error) = decode(#"{"type":"publish","topic":"\#(bad)","message":1}"#).command else {
                Issue.record("accepted \(bad)"); continue
            }
            #expect(error.code == .badRequest)
        }
        // A short name after a long one, and the long one again.
        #expect(try topic("t") == "t")
        #expect(try topic(long) == long)
    }

    /// Short names are kept too (as their bytes in two words): each frame gets the name its
    /// bytes spell, whatever the last frame named, at every length up to the 15 bytes a small
    /// string holds and across the switch to long names; bad names are still refused after a
    /// good one that shares their first bytes.
    @Test func shortTopicNamesAreMatchedByTheirBytes() throws {
        func topic(_ name: String) throws -> String {
            guard case .publish(let topic, _, _) = try decode(#"{"type":"publish","topic":"\#(name)","message":1}"#).command.get() else {
                return ""
            }
            return topic
        }
        let alphabet = Array("abcdefghijklmnop")
        var names = (1...16).map { String(alphabet[0..<$0]) }  // "a" … 16 bytes: lengths either side of 15
        names += ["b", "ab", "ba", "abcdefghijklmno", "abcdefghijklmnO", "Abcdefghijklmno", "a.b", "a-b", "a_b"]
        for (index, name) in names.enumerated() {
            #expect(try topic(name) == name)
            #expect(try topic(name) == name, "named twice")
            let other = names[(index * 7 + 3) % names.count]
            #expect(try topic(other) == other, "\(other) after \(name)")
        }
        _ = try topic("abc")
        for bad in ["abc ", "ab c", "abc\\\\", "abç"] {
            guard case .failure(let error) = decode(#"{"type":"publish","topic":"\#(bad)","message":1}"#).command else {
                Issue.record("accepted \(bad)"); continue
            }
            #expect(error.code == .badRequest)
            #expect(try topic("abc") == "abc")
        }
    }

    @Test func topicNamesAreKeptPerThread() async {
        // Threads decoding different names (long and short) at once each get their own, every time.
        await withTaskGroup(of: Bool.self) { group in
            for index in 0..<8 {
                group.addTask {
                    let name = index.isMultiple(of: 2) ? "thread-\(index).topic.with-a-long-name" : "t\(index)"
                    let frame = ByteBuffer(string: #"{"type":"publish","topic":"\#(name)","message":1}"#)
                    return (0..<5_000).allSatisfy { _ in
                        guard case .success(.publish(let topic, _, _)) = NativeCodec.decode(frame, limits: DecodingLimits()).command else { return false }
                        return topic == name
                    }
                }
            }
            for await consistent in group { #expect(consistent) }
        }
    }
}
