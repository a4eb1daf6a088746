import BrokerContract
import Foundation
import NIOCore
import Testing

@testable import PubSubCore
@testable import PubSubProtocol

@Suite("Native codec")
struct NativeCodecTests {
    func decode(_ text: String, max: Int = 65_536) -> ClientRequest {
        NativeCodec.decode(ByteBuffer(string: text), limits: DecodingLimits(maxMessageBytes: max))
    }

    @Test func decodesEveryCommand() throws {
        guard case .subscribe("t", .lastN(5)) = try decode(#"{"type":"subscribe","topic":"t","last_n":5}"#).command.get() else {
            Issue.record("subscribe"); return
        }
        guard case .subscribe("t", .since(41, epoch: "e")) = try decode(#"{"type":"subscribe","topic":"t","since":41,"epoch":"e"}"#).command.get() else {
            Issue.record("since"); return
        }
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

    /// Strips the WebSocket header of a server frame and parses its JSON.
    func json(_ frame: ByteBuffer) throws -> [String: Any] {
        var frame = frame
        let first = frame.readInteger(as: UInt8.self)!
        #expect(first == 0x81)
        let length = Int(frame.readInteger(as: UInt8.self)! & 0x7F)
        if length == 126 { _ = frame.readInteger(as: UInt16.self) }
        let bytes = frame.readBytes(length: frame.readableBytes)!
        return try JSONSerialization.jsonObject(with: Data(bytes)) as! [String: Any]
    }

    @Test func eventFrameIsEncodedOnceAsAWholeFrame() throws {
        let publication = Publication(topic: "t", seq: 42, id: "i\"d", payload: ByteBuffer(string: #"{"x":[1]}"#), timestampMillis: 1_795_428_000_123)
        let frame = try json(NativeEventEncoder().encode(publication))
        #expect(frame["type"] as? String == "event")
        #expect(frame["seq"] as? Int == 42)
        #expect((frame["message"] as? [String: Any])?["id"] as? String == "i\"d")
        #expect(frame["ts"] as? String == "2026-11-23T10:00:00.123Z")
    }

    @Test func longFramesGetExtendedLengths() {
        let payload = ByteBuffer(string: "\"" + String(repeating: "y", count: 70_000) + "\"")
        let frame = NativeEventEncoder().encode(Publication(topic: "t", seq: 1, id: "x", payload: payload, timestampMillis: 0))
        #expect(frame.getInteger(at: frame.readerIndex + 1, as: UInt8.self) == 127)
        #expect(Int(frame.getInteger(at: frame.readerIndex + 2, as: UInt64.self)!) == frame.readableBytes - 10)
    }

    /// The publish ack is written from literals: every member, in order, with and without a
    /// request_id (escaped when it needs it), and the publish's own instant as `ts`.
    @Test(arguments: [nil, "p1", #"a"b"#] as [String?])
    func publishAckHasEveryMember(requestID: String?) throws {
        let receipt = PublishReceipt(
            topic: "orders", messageID: MessageID("m1"), seq: 42, delivered: 3, dropped: 1, timestampMillis: 951_782_400_999
        )
        let frame = NativeCodec.frame(.published(receipt), requestID: requestID)
        let object = try json(frame)
        #expect(object["type"] as? String == "ack")
        #expect(object["action"] as? String == "published")
        #expect(object["topic"] as? String == "orders")
        #expect(object["message_id"] as? String == "m1")
        #expect(object["seq"] as? Int == 42)
        #expect(object["stats"] as? [String: Int] == ["delivered": 3, "dropped": 1])
        #expect(object["request_id"] as? String == requestID)
        #expect(object["ts"] as? String == "2000-02-29T00:00:00.999Z")
        #expect(object.count == (requestID == nil ? 7 : 8))
        let text = String(buffer: frame)
        #expect(text.hasSuffix(#""ts":"2000-02-29T00:00:00.999Z"}"#))
        #expect(text.contains(#"{"type":"ack","action":"published","topic":"orders","message_id":"m1","seq":42,"#))
    }

    @Test func errorFrameCarriesCodeAndRequestID() throws {
        let frame = try json(NativeCodec.frame(.error(.topicNotFound("x")), requestID: "r1"))
        #expect((frame["error"] as? [String: Any])?["code"] as? String == "TOPIC_NOT_FOUND")
        #expect(frame["request_id"] as? String == "r1")
    }

    @Test(arguments: [(Int64(0), "1970-01-01T00:00:00.000Z"), (951_782_400_999, "2000-02-29T00:00:00.999Z"), (-1, "1969-12-31T23:59:59.999Z")])
    func timestamps(_ millis: Int64, _ expected: String) {
        #expect(Timestamp.iso8601(millis: millis) == expected)
    }

    @Test func headersAreTheSameWhicheverWayTheyAreWritten() {
        for length in [0, 125, 126, 65_535, 65_536, 70_000] {
            let payload = ByteBuffer(repeating: 0x61, count: length)
            let prepended = WebSocketFraming.frame(opcode: 0x2, payload: payload)
            var appended = ByteBuffer()
            WebSocketFraming.writeHeader(first: 0x82, length: length, to: &appended)
            appended.writeImmutableBuffer(payload)
            #expect(prepended == appended, "length \(length)")
            #expect(prepended.readableBytes - length == WebSocketFraming.headerSize(length: length))
            #expect(WebSocketFraming.payload(of: prepended) == payload)
        }
    }

    @Test func inPlaceFramesAreRightWhateverTheEstimate() {
        // Too small (built aside, copied), exact, and so large the header shrinks (text moved).
        for estimate in [0, 4, 11, 126, 200, 70_000] {
            var buffer = ByteBuffer(string: "before")
            JSONWriter.append(to: &buffer, estimatedSize: estimate, frame: true) { $0.object { $0.member("k", "value") } }
            JSONWriter.append(to: &buffer, estimatedSize: estimate, frame: false) { $0.plainString("x") }
            #expect(buffer.readString(length: 6) == "before")
            #expect(buffer.readInteger(as: UInt8.self) == 0x81)
            #expect(buffer.readInteger(as: UInt8.self) == 13)
            #expect(buffer.readString(length: 13) == #"{"k":"value"}"#)
            #expect(buffer.readString(length: buffer.readableBytes) == #""x""#, "estimate \(estimate)")
        }
        let long = String(repeating: "é", count: 20_000)  // 40,000 bytes: a 16-bit length
        let frame = NativeCodec.frame(.error(PubSubError(.badRequest, long)), requestID: "r")
        #expect(frame.getInteger(at: frame.readerIndex + 1, as: UInt8.self) == 126)
        let length = Int(frame.getInteger(at: frame.readerIndex + 2, as: UInt16.self)!)
        #expect(length == frame.readableBytes - 4)
        let json = try? JSONSerialization.jsonObject(with: Data(frame.getBytes(at: frame.readerIndex + 4, length: length)!)) as? [String: Any]
        #expect((json?["error"] as? [String: Any])?["message"] as? String == long)
    }

    /// Short appends are copied inline, by width (1, 2-3, 4-7, 8-15, 16-32 bytes), longer ones
    /// by `memmove`: every length, at every offset, in a lent region and in the sink's own storage.
    @Test func sinkAppendsEveryLengthExactly() {
        let source = (0..<80).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        for start in 0..<3 {
            for length in 0...40 {
                var expected: [UInt8] = Array(repeating: 0xEE, count: start)
                expected += source[5..<(5 + length)]
                expected += [0xFF]
                let region = UnsafeMutableRawBufferPointer.allocate(byteCount: 128, alignment: 16)
                defer { region.deallocate() }
                for own in [false, true] {
                    var sink = own ? ByteSink(capacity: 4) : ByteSink(region: region)
                    for _ in 0..<start { sink.append(0xEE) }
                    source.withUnsafeBytes { sink.append(contentsOf: UnsafeRawBufferPointer(rebasing: $0[5..<(5 + length)])) }
                    sink.append(0xFF)
                    let written = sink.withUnsafeBytes { Array($0) }
                    #expect(written == expected, "length \(length) after \(start) bytes, own storage: \(own)")
                }
            }
        }
    }

    @Test func writtenStringsRoundTripWithSpecialCharactersAnywhere() throws {
        // A quote, backslash or control character at every offset, across the 8-byte chunks.
        for special in ["\"", "\\", "\n", "\u{01}", "\u{1F}", "é", "😀"] {
            for offset in 0..<20 {
                let value = String(repeating: "a", count: offset) + special + String(repeating: "b", count: 19 - offset)
                var json = JSONWriter(frame: false)
                json.object { $0.member("v", value) }
                let text = String(buffer: json.finish())
                let parsed = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
                #expect(parsed?["v"] as? String == value, "\(text)")
            }
        }
    }

    @Test func integersAreWrittenInDecimal() {
        var values: [Int64] = [0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, -1, -10, -99, -100, .max, .min]
        var power: Int64 = 1
        for _ in 0..<18 {
            power *= 10
            values += [power - 1, power, power + 1, -power]
        }
        var rng = SystemRandomNumberGenerator()
        values += (0..<500).map { _ in Int64.random(in: .min ... .max, using: &rng) }
        for value in values {
            var json = JSONWriter(frame: false)
            json.int(value)
            #expect(String(buffer: json.finish()) == String(value))
        }
        var json = JSONWriter(frame: false)
        json.int(UInt64.max)
        #expect(String(buffer: json.finish()) == String(UInt64.max))
    }

    @Test func timestampsMatchFoundation() {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let millis = Int64.random(in: 0...4_102_444_800_000, using: &rng)  // 1970...2100
            let expected = formatter.string(from: Date(timeIntervalSince1970: Double(millis) / 1000 + 0.0001))
            #expect(Timestamp.iso8601(millis: millis) == expected)
            // Again (from the thread's cache), and after another instant replaced it.
            #expect(Timestamp.iso8601(millis: millis) == expected)
            _ = Timestamp.iso8601(millis: millis + 1)
            #expect(Timestamp.iso8601(millis: millis) == expected)
        }
    }

    /// A long topic name named again is the same `String` (no new one per frame), and only for
    /// the very same bytes: any other name, escaped spelling or bad name is decoded on its own.
    @Test func longTopicNamesAreReusedOnlyForTheSameBytes() throws {
        func topic(_ name: String, type: String = "publish") throws -> String {
            let extra = type == "publish" ? #","message":1"# : ""
            switch try decode(#"{"type":"\#(type)","topic":"\#(name)"\#(extra)}"#).command.get() {
            case .publish(let topic, _, _), .subscribe(let topic, _), .unsubscribe(let topic): return topic
            case .ping: return ""
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

    @Test func timestampsAreFormattedPerThread() async {
        // Threads formatting different instants at once each get their own.
        await withTaskGroup(of: Bool.self) { group in
            for offset in 0..<8 {
                group.addTask {
                    let millis = Int64(1_700_000_000_000 + offset * 86_400_000)
                    let expected = Timestamp.iso8601(millis: millis)
                    return (0..<20_000).allSatisfy { _ in Timestamp.iso8601(millis: millis) == expected }
                }
            }
            for await consistent in group { #expect(consistent) }
        }
    }

    @Test func generatedIDsAreUUIDv4() {
        var generator = MessageIDGenerator()
        var seen = Set<String>()
        for _ in 0..<1000 {
            let id = generator.uuidString()
            #expect(id.count == 36)
            #expect(Array(id)[14] == "4")
            #expect("89ab".contains(Array(id)[19]))
            seen.insert(id)
        }
        #expect(seen.count == 1000)
    }

    @Test func generatedIDsSpellTheirBitsInHex() {
        var rng = SystemRandomNumberGenerator()
        let edges: [(UInt64, UInt64)] = [(0, 0), (.max, .max), (0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210)]
        for (hi, lo) in edges + (0..<1000).map({ _ in (rng.next(), rng.next()) }) {
            func hex(_ value: UInt64) -> String {
                let digits = String(value, radix: 16)
                return String(repeating: "0", count: 16 - digits.count) + digits
            }
            let all = Array(hex(hi) + hex(lo))
            let expected = [all[0..<8], all[8..<12], all[12..<16], all[16..<20], all[20..<32]].map { String($0) }.joined(separator: "-")
            #expect(MessageID(uuidHigh: hi, low: lo).description == expected)
        }
    }

    /// The exact-size event frame (`NativeEventFrame`) is byte for byte what the JSON writer
    /// writes for the same event, across the sizes where each part's length changes: seq digits,
    /// topic names inline in their `String` or not, generated, given and escaped ids, and text
    /// lengths either side of the header's 2/4/10-byte boundaries.
    @Test func exactSizeEventFramesEqualTheJSONWriters() {
        func reference(_ content: borrowing PublicationContent) -> ByteBuffer {
            var json = JSONWriter(frame: true)
            NativeEventEncoder.write(content, into: &json)
            return json.finish()
        }
        let ids = [MessageID(uuidHigh: 0x0123_4567_89ab_cdef, low: 0xfedc_ba98_7654_3210), MessageID("m-1"), MessageID("ü/ж"), MessageID(#"q"\x"#)]
        let seqs: [UInt64] = [0, 1, 9, 10, 99, 100, 12_345, 1_000_000_007, .max]
        let topics = ["t", "orders.eu-west-1.created", "a.b_c-d"]
        var arena = FrameArena()
        var compared = 0
        for payloadSize in [0, 1, 10, 30, 31, 32, 33, 40, 60, 61, 62, 63, 64, 65_400, 65_500, 65_600] {
            let payload = ByteBuffer(string: "\"" + String(repeating: "x", count: payloadSize) + "\"")
            for (index, id) in ids.enumerated() {
                for topic in topics {
                    let seq = seqs[(payloadSize + index) % seqs.count]
                    let content = PublicationContent(topic: topic, seq: seq, id: id, payload: payload, timestampMillis: 1_795_428_000_123)
                    let expected = reference(content)
                    #expect(NativeEventEncoder().encode(content) == expected, "seq \(seq), id \(id), topic \(topic), payload \(payloadSize)")
                    #expect(NativeEventEncoder().encode(content, in: &arena) == expected, "arena: seq \(seq), id \(id), payload \(payloadSize)")
                    compared += 1
                }
            }
        }
        for seq in seqs {
            let content = PublicationContent(topic: "t", seq: seq, id: ids[0], payload: ByteBuffer(string: "1"), timestampMillis: 0)
            #expect(NativeEventEncoder().encode(content) == reference(content), "seq \(seq)")
        }
        #expect(compared == 16 * 4 * 3)
    }

    /// Event frames write a generated id straight into the frame, not through its description.
    @Test func eventFramesSpellGeneratedIDsAsTheirDescription() {
        var rng = SystemRandomNumberGenerator()
        let edges: [(UInt64, UInt64)] = [(0, 0), (.max, .max), (0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210)]
        for (hi, lo) in edges + (0..<100).map({ _ in (rng.next(), rng.next()) }) {
            let id = MessageID(uuidHigh: hi, low: lo)
            let content = PublicationContent(topic: "t", seq: 1, id: id, payload: ByteBuffer(string: "1"), timestampMillis: 0)
            let frame = String(buffer: NativeEventEncoder().encode(content))
            #expect(frame.contains(#","message":{"id":"\#(id.description)","payload":1}"#))
        }
    }
}

@Suite("Publication payload storage")
struct PublicationPayloadTests {
    static let encoders: [any PublicationEncoder] = [
        NativeEventEncoder(), PhoenixEventEncoder(version: .v1), PhoenixEventEncoder(version: .v2),
        DeflatedEncoder(NativeEventEncoder()),
    ]

    /// Frames written into a topic's arena are the bytes each encoder writes into a buffer of
    /// its own, for small and large payloads (the latter too big to share a chunk) alike.
    @Test func arenaFramesEqualOwnBufferFrames() {
        var arena = FrameArena()
        for (index, size) in [0, 10, 100, 1_000, 5_000, 20_000].enumerated() {
            let payload = ByteBuffer(string: #"{"p":""# + String(repeating: "x", count: size) + #""}"#)
            let content = PublicationContent(
                topic: "t", seq: UInt64(index + 1), id: MessageID("m\(index)"), payload: payload, timestampMillis: 1_795_428_000_123
            )
            for encoder in Self.encoders {
                #expect(encoder.encode(content, in: &arena) == encoder.encode(content), "\(type(of: encoder)), payload \(size) B")
            }
        }
    }

    /// Whichever single format has subscribers (or none), history keeps the exact payload, and
    /// not the buffer the message arrived in: a slice of the frame where the payload sits
    /// verbatim, else a copy.
    @Test(arguments: [nil, 0, 1, 2, 3] as [Int?])
    func payloadIsASliceOfTheFrameOrACopy(format: Int?) throws {
        let broker = MemoryNode(BrokerConfiguration(historySize: 10), encoders: Self.encoders)
        _ = try broker.createTopic("t")
        if let format {
            let subscriber = Subscriber(clientID: "c", format: format, limits: QueueLimits(), counters: broker.counters) {}
            _ = try broker.subscribe(subscriber, topic: "t", replay: .none) { _ in ByteBuffer() }
        }
        for message in [#"{"a":1,"s":"x\"}y"}"#, #""text""#, "42", #"{"id":"m1","payload":[1,{"b":null}]}"#] {
            // The message arrives inside a larger buffer, as in a frame.
            let frame = ByteBuffer(string: #"{"type":"publish","topic":"t","message":"# + message + "}")
            let request = NativeCodec.decode(frame, limits: DecodingLimits())
            guard case .publish(_, let input, _) = try request.command.get() else { Issue.record("decode"); return }
            _ = try broker.publish(topic: "t", message: input)
            let kept = try #require(try broker.history(topic: "t", lastN: 1).first)
            let expected = message.hasPrefix(#"{"id""#) ? #"[1,{"b":null}]"# : message
            #expect(String(buffer: kept.payload) == expected)
            // Whether `inner`'s bytes lie inside `outer`'s memory.
            func lies(_ inner: ByteBuffer, in outer: ByteBuffer) -> Bool {
                inner.withUnsafeReadableBytes { i in
                    outer.withUnsafeReadableBytes { o in
                        i.baseAddress! >= o.baseAddress! && i.baseAddress! + i.count <= o.baseAddress! + o.count
                    }
                }
            }
            #expect(!lies(kept.payload, in: frame), "the arrival buffer is not kept")
            if let format, format < 3 {
                #expect(lies(kept.payload, in: kept.frames[format]!), "a slice of the encoded frame")
            }
        }
    }
}

@Suite("Compressed encoders")
struct DeflatedEncoderTests {
    /// Counts how often the plain event is encoded.
    final class CountingEncoder: PublicationEncoder, @unchecked Sendable {
        var calls = 0
        func encode(_ publication: borrowing PublicationContent) -> ByteBuffer {
            calls += 1
            return NativeEventEncoder().encode(publication)
        }
    }

    /// With plain and compressed subscribers (or compressed only), the event is encoded once.
    @Test(arguments: [[0, 1], [1]])
    func plainFrameIsEncodedOnce(formats: [Int]) throws {
        let plain = CountingEncoder()
        let broker = MemoryNode(BrokerConfiguration(historySize: 10), encoders: [plain, DeflatedEncoder(plain, reusing: 0)])
        _ = try broker.createTopic("t")
        for format in formats {
            let subscriber = Subscriber(clientID: "c", format: format, limits: QueueLimits(), counters: broker.counters) {}
            _ = try broker.subscribe(subscriber, topic: "t", replay: .none) { _ in ByteBuffer() }
        }
        _ = try broker.publish(topic: "t", message: MessageInput(id: "m", payload: ByteBuffer(string: #"{"k":"v"}"#)))
        #expect(plain.calls == 1)
        let kept = try #require(try broker.history(topic: "t", lastN: 1).first)
        let compressed = try #require(kept.frames[1])
        #expect(compressed.getInteger(at: compressed.readerIndex, as: UInt8.self) == 0xC1, "FIN + RSV1 + text")
        if formats.contains(0) { #expect(kept.frames[0] != nil) }
    }
}
