import NIOCore
import Testing

@testable import PubSubProtocol

/// The frame reader against streams cut at arbitrary points: whatever the reads look like, the
/// messages come out whole, in order, unmasked, with control frames where they were sent.
@Suite("WebSocket reader")
struct WebSocketReaderTests {
    static func frameBytes(opcode: UInt8, payload: [UInt8], fin: Bool = true, rsv1: Bool = false, maskKey: UInt32? = 0) -> [UInt8] {
        var buffer = ByteBuffer()
        WebSocketFraming.writeClientFrame(opcode: opcode, payload: payload, fin: fin, rsv1: rsv1, maskKey: maskKey, to: &buffer)
        return Array(buffer.readableBytesView)
    }

    enum Expected: Equatable {
        case text([UInt8], compressed: Bool)
        case binary([UInt8], compressed: Bool)
        case ping([UInt8])
        case pong
    }

    struct Rng {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state >> 11
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    /// A random stream of messages (some fragmented, some with pings between fragments) and the
    /// messages the reader must produce from it.
    static func stream(seed: UInt64) -> (bytes: [UInt8], expected: [Expected]) {
        var rng = Rng(state: seed)
        var bytes: [UInt8] = []
        var expected: [Expected] = []
        func key() -> UInt32 { rng.below(4) == 0 ? 0 : UInt32(truncatingIfNeeded: rng.next()) }
        for _ in 0..<(20 + rng.below(30)) {
            // Every length form: 7-bit, 16-bit (126...65535) and, now and then, 64-bit.
            let length = rng.below(40) == 0 ? 70_000 : [0, 1, 7, 8, 9, 125, 126, 200, 1500][rng.below(9)]
            let payload = (0..<length).map { _ in UInt8(32 + rng.below(90)) }
            let compressed = rng.below(5) == 0
            switch rng.below(6) {
            case 0:
                let ping = Array(payload.prefix(125))
                bytes += Self.frameBytes(opcode: 0x9, payload: ping, maskKey: key())
                expected.append(.ping(ping))
            case 1:
                bytes += Self.frameBytes(opcode: 0xA, payload: Array(payload.prefix(10)), maskKey: key())
                expected.append(.pong)
            case 2:
                bytes += Self.frameBytes(opcode: 0x2, payload: payload, rsv1: compressed, maskKey: key())
                expected.append(.binary(payload, compressed: compressed))
            case 3:
                // Fragmented text, with a ping between two fragments.
                let cuts = [0, payload.count / 3, payload.count * 2 / 3, payload.count]
                for index in 0..<3 {
                    let part = Array(payload[cuts[index]..<cuts[index + 1]])
                    bytes += Self.frameBytes(
                        opcode: index == 0 ? 0x1 : 0x0, payload: part, fin: index == 2, rsv1: index == 0 && compressed, maskKey: key()
                    )
                    if index == 1 { bytes += Self.frameBytes(opcode: 0x9, payload: [7], maskKey: key()) }
                }
                expected.append(.ping([7]))
                expected.append(.text(payload, compressed: compressed))
            default:
                bytes += Self.frameBytes(opcode: 0x1, payload: payload, rsv1: compressed, maskKey: key())
                expected.append(.text(payload, compressed: compressed))
            }
        }
        return (bytes, expected)
    }

    @Test(arguments: [UInt64(1), 2, 3, 4, 5, 6])
    func anyReadBoundaries(seed: UInt64) throws {
        let (bytes, expected) = Self.stream(seed: seed)
        var rng = Rng(state: seed &* 31)
        // Reads of 1 byte, of a few bytes, of thousands, and the whole stream at once.
        for maxRead in [1, 3, 17, 1000, 70_000, bytes.count] {
            var reader = WebSocketReader(maxMessageBytes: 1 << 20, compressionNegotiated: true)
            var got: [Expected] = []
            var offset = 0
            while offset < bytes.count {
                let size = min(bytes.count - offset, 1 + rng.below(maxRead))
                try reader.read(ByteBuffer(bytes: bytes[offset..<(offset + size)])) { message in
                    switch message {
                    case .text(let text, let compressed): got.append(.text(Array(text.readableBytesView), compressed: compressed))
                    case .binary(let bytes, let compressed): got.append(.binary(Array(bytes.readableBytesView), compressed: compressed))
                    case .ping(let payload): got.append(.ping(Array(payload.readableBytesView)))
                    case .pong: got.append(.pong)
                    case .close: Issue.record("no close was sent")
                    }
                    return true
                }
                offset += size
            }
            // Report the first difference, not two long arrays.
            let first = zip(got, expected).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset
            #expect(got.count == expected.count && first == nil,
                    "seed \(seed), reads up to \(maxRead) bytes: \(got.count) of \(expected.count) messages, first difference at \(first.map(String.init) ?? "-")")
        }
    }

    @Test func memoryStaysAboutOneFrameWhenFramesStraddleReads() throws {
        // 2,000 frames of 1,000 bytes, read 1,500 bytes at a time: every read ends mid-frame.
        let frame = Self.frameBytes(opcode: 0x1, payload: Array(repeating: 0x61, count: 1000), maskKey: 0x0A0B_0C0D)
        let bytes = Array((0..<2000).map { _ in frame }.joined())
        var reader = WebSocketReader(maxMessageBytes: 1 << 20, compressionNegotiated: false)
        var messages = 0
        var largest = 0
        var offset = 0
        while offset < bytes.count {
            let size = min(1500, bytes.count - offset)
            try reader.read(ByteBuffer(bytes: bytes[offset..<(offset + size)])) { _ in
                messages += 1
                return true
            }
            largest = max(largest, reader.pendingCapacity)
            offset += size
        }
        #expect(messages == 2000)
        #expect(largest <= 4096, "held \(largest) bytes for an incomplete frame")
    }

    @Test func messagesBeforeABadFrameAreDeliveredThenItFails() {
        var reader = WebSocketReader(maxMessageBytes: 1 << 20, compressionNegotiated: false)
        let bytes = Self.frameBytes(opcode: 0x1, payload: Array("ok".utf8), maskKey: 0x0102_0304)
            + Self.frameBytes(opcode: 0x1, payload: [1], rsv1: true)
            + Self.frameBytes(opcode: 0x1, payload: Array("never".utf8))
        var got: [String] = []
        #expect(throws: WebSocketReader.Failure.protocolError("compressed frame without permessage-deflate")) {
            try reader.read(ByteBuffer(bytes: bytes)) { message in
                if case .text(let text, _) = message { got.append(String(buffer: text)) }
                return true
            }
        }
        #expect(got == ["ok"])
        #expect(reader.failed)
    }
}
