import BrokerContract
import Foundation
import NIOCore
import Testing

@testable import PubSubCore
@testable import PubSubProtocol

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
