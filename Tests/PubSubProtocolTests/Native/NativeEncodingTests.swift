import BrokerContract
import Foundation
import NIOCore
import Testing

@testable import PubSubCore
@testable import PubSubProtocol

@Suite("Native codec: encoding")
struct NativeEncodingTests {
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
